"""The one place credentials are taken out of anything logged, saved or rendered.

Two kinds of secret reach configs: values under keys named like a credential (``hub_token``,
``api_key``, ``password``, ``secret``; not ``max_tokens`` or ``api_key_env``, which name a variable,
not its value) and the userinfo of a URL (``http://user:pass@host``). Every place that writes a
config into a log, a run directory, an error or a card goes through :func:`redact_config` or
:func:`redact_text`.

A key names a credential when its *last* word does (``hub_token``, ``aws_secret_access_key``,
``Authorization``), so ``token_budget``, ``key_field`` or the ``KeyError`` of an error message are
left alone. In free text (a recipe file rendered into a card, a command line, an error), the same
test finds ``key: value``, ``key=value``, ``"key": "value"`` and ``--key value``, and ``Bearer`` tokens.

``training/redact.py`` is a copy (training imports nothing from datagen); ``tests/test_redaction.py``
checks that the two agree.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

# Whole words of a key (split on _ - . and case changes) that mark a credential.
_SECRET_WORDS = {
    "token",
    "key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "pwd",
    "credential",
    "credentials",
    "auth",
    "authorization",
}
# Keys that contain such a word but hold no secret: counts, names of env vars, key *names*.
_NOT_SECRET = re.compile(
    r"(^|_)(max|min|num)_|_env$|_tokens?_|tokens$|^tokenizer|_key_name$|^key_(field|column)$"
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_BEARER = re.compile(r"\b(?P<lead>Bearer\s+)[^\s'\",;]+", re.IGNORECASE)
# key: value / key=value / "key": "value" / 'key': 'value' (YAML, JSON, Python reprs, env dumps)
_PAIR = re.compile(
    r"""(?P<lead>(?P<q>["']?)(?P<key>[A-Za-z_][\w.-]*)(?P=q)[ \t]*[:=][ \t]*)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|(?:Bearer|Basic)[ \t]+[^\s,;}\])]+|[^\s,;{}\[\]()"'][^\s,;}\])]*)"""
)
_FLAG = re.compile(r"(?P<lead>--(?P<key>[A-Za-z_][\w-]*)[ \t]+)(?P<value>[^\s-][^\s]*)")  # --key value
_UNSET = {"null", "~", "None", "''", '""'}


def is_secret_key(key: str) -> bool:
    """Whether a config key names a credential's value (``hub_token``, ``api_key``, ``password``)."""
    lowered = key.lower()
    if _NOT_SECRET.search(lowered):
        return False
    words = [w for w in re.split(r"[_\-.\s]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if w]
    return bool(words) and words[-1] in _SECRET_WORDS


def redact_url(url: str) -> str:
    """``http://user:pass@host/v1`` -> ``http://<redacted>@host/v1``; other text unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_text(text: str) -> str:
    """Free text (an error, a log line, a recipe file, a command line) with its URL userinfo,
    bearer tokens and the values of secret-named ``key: value`` / ``--key value`` pairs replaced."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m['lead']}{REDACTED}", text)
    text = _PAIR.sub(_masked_pair, text)
    return _FLAG.sub(_masked_pair, text)


def _masked_pair(match: re.Match[str]) -> str:
    value = match["value"]
    if not is_secret_key(match["key"]) or value in _UNSET:
        return match[0]
    quote = value[0] if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0] else ""
    return f"{match['lead']}{quote}{REDACTED}{quote}"


def redact_config(value: Any, key: str = "") -> Any:
    """A deep copy of ``value`` with credential values and URL userinfo replaced by ``<redacted>``."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(str(k)) and v not in (None, "") else redact_config(v, str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_config(item, key) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def validation_problems(exc: Any, limit: int = 10) -> str:
    """A pydantic ``ValidationError`` as ``loc: message (found value)`` lines, values redacted: the
    value under a secret-named key is never shown, credentials inside other values are masked.

    Config models set ``hide_input_in_errors`` so the error's own text never echoes a value (an
    unknown ``api_key:`` key would print its key otherwise); this puts the values back, safely."""
    lines = []
    for error in exc.errors()[:limit]:
        loc = [str(part) for part in error["loc"]]
        where = ".".join(loc) or "(top level)"
        found = ""
        if "input" in error:
            shown = REDACTED if loc and is_secret_key(loc[-1]) else redact_config(error["input"])
            text = repr(shown)
            found = f" (found {text if len(text) <= 80 else text[:77] + '...'})"
        lines.append(f"{where}: {error['msg']}{found}")
    more = exc.error_count() - len(lines)
    return "\n".join(lines + ([f"... and {more} more"] if more > 0 else []))
