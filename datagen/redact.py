"""The one place credentials are taken out of anything logged, saved or rendered.

Two kinds of secret reach configs: values under keys named like a credential (``hub_token``,
``api_key``, ``password``, ``secret``; not ``max_tokens`` or ``api_key_env``, which name a variable,
not its value) and the userinfo of a URL (``http://user:pass@host``). Every place that writes a
config into a log, a run directory, an error or a card goes through :func:`redact_config` or
:func:`redact_text`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

# Whole words of a key (split on _ - . and case changes) that mark a credential.
_SECRET_WORDS = {"token", "key", "secret", "password", "passwd", "pwd", "credential", "credentials", "auth"}
# Keys that contain such a word but hold no secret: counts, names of env vars, key *names*.
_NOT_SECRET = re.compile(
    r"(^|_)(max|min|num)_|_env$|_tokens?_|tokens$|^tokenizer|_key_name$|^key_(field|column)$"
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def is_secret_key(key: str) -> bool:
    """Whether a config key names a credential's value (``hub_token``, ``api_key``, ``password``)."""
    lowered = key.lower()
    if _NOT_SECRET.search(lowered):
        return False
    words = set(re.split(r"[_\-.\s]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()))
    return bool(words & _SECRET_WORDS)


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
    """Any URL userinfo inside free text (an error message, a log line) replaced."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


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
