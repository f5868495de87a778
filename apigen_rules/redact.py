"""The one place credentials are taken out of anything logged, saved or rendered.

Three kinds of secret reach configs, logs and errors:

- values under keys named like a credential: a key is split into words (``_ - .``, spaces and case
  changes: ``openai_api_key``, ``apiKey``, ``X-Api-Key``, ``api_keys``, ``HF_TOKEN``) and names a
  credential when a word does (``token``, ``key``, ``secret``, ``password``, ``auth``, ``sig``,
  ``signature``, ``credential``, ``cookie`` and their plurals; ``tokens`` only after ``api``,
  ``access``, ``hub`` and the like, since ``prompt_tokens`` is a count). A key is not a credential
  when it counts (``max_tokens``, ``num_keys``) or when a word after the credential's says it names
  one rather than holds it (``api_key_env``, ``token_budget``, ``key_field``, ``KeyError``);
- the userinfo of a URL (``http://user:pass@host``), however many ``@`` the password holds;
- ``Bearer`` tokens.

In free text (a recipe file rendered into a card, a command line, an error, a log line) a key is
found as ``key: value``, ``key=value``, ``"key": "value"``, ``--key value``, a header
``X-Api-Key: value`` or a URL query ``?api_key=value&...``; its value is a quoted string, a flow
list or mapping, a YAML block under the key, or a bare token. Every function here is linear in its
input (a 10 MB value is redacted in well under a second): candidate keys are found with ``bytes.find``
on the secret words, never by trying a pattern at every position.

Every package uses this one module (``training`` too: this leaf package imports no other project
package, so SFT and DPO load it without loading datagen).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

REDACTED = "<redacted>"

# Whole words of a key that mark a credential.
_SECRET_WORDS = frozenset(
    {
        "token",
        "key",
        "keys",
        "apikey",
        "apikeys",
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "pwd",
        "passphrase",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "sig",
        "signature",
        "cookie",
        "cookies",
    }
)
# "tokens" is usually a count (prompt_tokens); after one of these words it is a list of credentials.
_TOKEN_OWNERS = frozenset(
    {"api", "access", "auth", "hub", "hf", "bearer", "refresh", "session", "oauth", "id"}
)
# A word that makes a key a count or a setting, not a value: anywhere in the key ...
_COUNT_WORDS = frozenset({"max", "min", "num", "n", "count", "counts", "total", "per"})
# ... or after the credential's word: the key names the credential (its variable, file, field, type).
_NAMING_WORDS = frozenset(
    {
        "env",
        "var",
        "vars",
        "name",
        "names",
        "field",
        "fields",
        "column",
        "columns",
        "file",
        "files",
        "path",
        "paths",
        "dir",
        "id",
        "ids",
        "type",
        "types",
        "kind",
        "mode",
        "error",
        "errors",
        "budget",
        "limit",
        "limits",
        "length",
        "len",
        "size",
        "url",
        "uri",
        "endpoint",
        "header",
        "format",
        "template",
        "required",
        "enabled",
        "index",
    }
)
# Lowercase substrings of every secret word: where a candidate key may be (searched with bytes.find).
_NEEDLES = (b"token", b"key", b"secret", b"pass", b"pwd", b"credential", b"auth", b"sig", b"cookie")
_MOST_BRACKETS = 10_000  # brackets and quotes looked at in one flow value
_LONGEST_KEY = 200  # a longer run of key characters is a value, not a key
_UNSET = frozenset({"null", "~", "None", "none", "''", '""', REDACTED})

_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z])([A-Z][a-z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_KEY_RUN = re.compile(rb"[A-Za-z0-9_.-]*")  # the characters of a key, over ASCII-lowered bytes
# After "://": the userinfo ends at the last "@" before the path, whitespace or a quote.
_USERINFO = re.compile(r"://(?P<userinfo>[^\s/\"'<>\\]*)@")
_BEARER = re.compile(rb"bearer[ \t]+")
_BARE = re.compile(r"[^\s,;}\])\"'<>]+")  # a bare value: up to whitespace or what closes it
_QUERY_VALUE = re.compile(r"[^\s&#\"'<>]*")  # a value in a URL query: up to the next parameter
_TOKEN = re.compile(r"[^\s'\",;]+")
_SCHEME_WORD = re.compile(r"(?:Bearer|Basic|Token|Digest)[ \t]+", re.IGNORECASE)
_BLOCK_SCALAR = re.compile(r"[|>][-+0-9]*[ \t]*(?:#[^\n]*)?(?=\r?\n|\Z)")
_BRACKETS = re.compile(r"[\[\]{}\"'\n]")


def _words(key: str) -> list[str]:
    spaced = _CAMEL.sub(lambda m: "_".join(g for g in m.groups() if g), key)
    return [w for w in _NOT_ALNUM.split(spaced.lower()) if w]


def is_secret_key(key: str) -> bool:
    """Whether a config key names a credential's value (``hub_token``, ``api_keys``, ``apiKey``,
    ``X-Api-Key``; not ``max_tokens``, ``api_key_env`` or ``token_budget``)."""
    return len(key) <= _LONGEST_KEY and _is_secret_key(key)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    words = _words(key)
    if any(w in _COUNT_WORDS for w in words):
        return False
    last = -1
    for index, word in enumerate(words):
        if word in _SECRET_WORDS or (word == "tokens" and index and words[index - 1] in _TOKEN_OWNERS):
            last = index
    return last >= 0 and not any(w in _NAMING_WORDS for w in words[last + 1 :])


def redact_url(url: str) -> str:
    """``http://user:p@ss@host/v1?api_key=k`` -> ``http://<redacted>@host/v1?api_key=<redacted>``."""
    return redact_text(url)


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without its ``user:password@``, (user, password) or None): the credentials travel
    as basic auth, so no request URL, log line or error of an HTTP client ever holds them."""
    from urllib.parse import unquote

    match = _USERINFO.search(url)
    if match is None or match.start() != url.find("://"):
        return url, None
    user, _, password = match["userinfo"].partition(":")
    return url[: match.start() + 3] + url[match.end() :], (unquote(user), unquote(password))


def redact_text(text: str) -> str:
    """Free text (an error, a log line, a recipe file, a command line) with its URL userinfo,
    bearer tokens and the values of secret-named keys replaced by ``<redacted>``."""
    if not text:
        return text
    lowered = text.encode("ascii", "replace").lower()  # one byte per character: same positions
    spans = [(m.start("userinfo"), m.end("userinfo"), REDACTED) for m in _USERINFO.finditer(text)]
    spans += _bearer_spans(text, lowered)
    spans += _pair_spans(text, lowered)
    return _replace(text, spans)


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with the spans replaced; overlapping spans are merged (the first one's replacement)."""
    if not spans:
        return text
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[str] = []
    pos = 0
    current: tuple[int, int, str] | None = None
    for start, end, replacement in spans:
        if current is not None and start < current[1]:
            current = (current[0], max(current[1], end), current[2])
            continue
        if current is not None:
            out += [text[pos : current[0]], current[2]]
            pos = current[1]
        current = (start, end, replacement)
    assert current is not None
    out += [text[pos : current[0]], current[2], text[current[1] :]]
    return "".join(out)


def _bearer_spans(text: str, lowered: bytes) -> list[tuple[int, int, str]]:
    spans = []
    for match in _BEARER.finditer(lowered):
        if match.start() and lowered[match.start() - 1 : match.start()].isalnum():
            continue  # part of a longer word
        token = _TOKEN.match(text, match.end())
        if token is not None and token[0] != REDACTED:
            spans.append((token.start(), token.end(), REDACTED))
    return spans


def _pair_spans(text: str, lowered: bytes) -> list[tuple[int, int, str]]:
    """The values of every secret-named key in ``text``. Each run of key characters is looked at
    once, and each value is scanned once: the work is linear in ``len(text)``."""
    spans: list[tuple[int, int, str]] = []
    size = len(lowered)
    nexts = [_found(lowered, needle, 0) for needle in _NEEDLES]
    reversed_ = b""
    cursor = 0  # everything before it has been looked at
    while (found := min(nexts)) < size:
        if not reversed_:
            reversed_ = lowered[::-1]
        back = size - found  # reversed_[back] is lowered[found - 1]
        start = found - (_KEY_RUN.match(reversed_, back).end() - back)
        end = _KEY_RUN.match(lowered, found).end()
        if start >= cursor:
            value = _secret_value(text, start, end)
            if value is not None:
                spans.append(value)
        cursor = max(end, spans[-1][1] if spans else 0)
        for index, pos in enumerate(nexts):
            if pos < cursor:
                nexts[index] = _found(lowered, _NEEDLES[index], cursor)
    return spans


def _found(lowered: bytes, needle: bytes, start: int) -> int:
    pos = lowered.find(needle, start)
    return len(lowered) if pos < 0 else pos


def _secret_value(text: str, start: int, end: int) -> tuple[int, int, str] | None:
    """The span of the value after the key ``text[start:end]``, if the key names a credential."""
    key = text[start:end]
    dashes = len(key) - len(key.lstrip("-"))
    if dashes > 2 or not is_secret_key(key):
        return None
    pos = end
    if text.startswith(('\\"', "\\'"), pos):
        pos += 2  # the escaped closing quote of a key inside a JSON string
    elif pos < len(text) and text[pos] in "\"'":
        pos += 1  # the closing quote of a quoted key
    spaced = pos
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos < len(text) and text[pos] in ":=":
        separator = text[pos]
        pos += 1
    elif dashes and pos > spaced:
        separator = " "  # --key value
    else:
        return None
    if separator == ":" and text.startswith("//", pos):
        return None  # a URL's scheme, not a key
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if separator == ":" and "cookie" in key.lower() and pos < len(text) and text[pos] not in "\r\n":
        return (pos, _line_end(text, pos), REDACTED)  # a Cookie header: every `name=value; ...` of it
    query = separator == "=" and start > 0 and text[start - 1] in "?&;"
    return _value_span(text, pos, start, separator, query)


def _value_span(
    text: str, pos: int, key_start: int, separator: str, query: bool
) -> tuple[int, int, str] | None:
    if pos >= len(text) or text[pos] in "\r\n":
        return _block_span(text, pos, key_start) if separator == ":" else None
    first = text[pos]
    if query:
        match = _QUERY_VALUE.match(text, pos)
        return (pos, match.end(), REDACTED) if match and match.end() > pos else None
    if text.startswith(('\\"', "\\'"), pos):  # an escaped quote: a value inside a JSON string
        close = text.find(text[pos : pos + 2], pos + 2)
        if close < 0 or text.find("\n", pos, close) >= 0:
            return (pos + 2, _line_end(text, pos), REDACTED)
        return (pos + 2, close, REDACTED)
    if first in "\"'":
        close = _closing_quote(text, pos)
        if close is None:
            return (pos + 1, _line_end(text, pos), REDACTED)  # unterminated: the rest of the line
        return None if text[pos + 1 : close] in ("", REDACTED) else (pos + 1, close, REDACTED)
    if first in "[{":
        return (pos, _closing_bracket(text, pos), REDACTED)
    if separator == " " and first == "-":
        return None  # the next flag, not a value
    if separator == ":" and (block := _BLOCK_SCALAR.match(text, pos)) is not None:
        span = _block_span(text, block.end(), key_start)
        return (pos, span[1], REDACTED) if span else (pos, block.end(), REDACTED)
    scheme = _SCHEME_WORD.match(text, pos)
    if scheme is not None:
        pos = scheme.end()
    match = _BARE.match(text, pos)
    if match is None or match[0] in _UNSET:
        return None
    return (pos, match.end(), REDACTED)


def _closing_quote(text: str, pos: int) -> int | None:
    """The index of the quote that closes the one at ``pos`` on its line (backslash escapes
    respected), or None."""
    quote = text[pos]
    index = pos + 1
    while (close := text.find(quote, index)) >= 0 and text.find("\n", index, close) < 0:
        backslashes = close - index - len(text[index:close].rstrip("\\"))
        if backslashes % 2 == 0:
            return close
        index = close + 1
    return None


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return end - 1 if end > pos and text[end - 1] == "\r" else end


def _closing_bracket(text: str, pos: int) -> int:
    """The end of the flow list or mapping opened at ``pos`` (quotes respected); the end of the text
    when it never closes, or nests past what a config holds (what cannot be parsed is not shown)."""
    depth = 0
    index = pos
    for _ in range(_MOST_BRACKETS):
        match = _BRACKETS.search(text, index)
        if match is None:
            break
        char = match[0]
        index = match.end()
        if char in "\"'":
            close = _closing_quote(text, match.start())
            index = close + 1 if close is not None else _line_end(text, index)
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index
    return len(text)


@functools.lru_cache(maxsize=64)
def _block_lines(column: int) -> re.Pattern[str]:
    """The lines of a YAML block under a key at ``column``: blank, deeper, or ``- `` items at it."""
    return re.compile(
        rf"(?:\r?\n(?:[ \t]*(?=\r?\n|\Z)| {{{column + 1},}}[^\r\n]*| {{{column}}}-(?:[ \t][^\r\n]*)?(?=\r?\n|\Z)))*"
    )


def _block_span(text: str, pos: int, key_start: int) -> tuple[int, int, str] | None:
    """The YAML block under a key that ends its line (``api_keys:`` then ``- a`` lines, or the
    lines of a ``|`` scalar), replaced by `` <redacted>``; None when no line belongs to it."""
    column = key_start - (text.rfind("\n", 0, key_start) + 1)
    end = len(text[pos : _block_lines(column).match(text, pos).end()].rstrip())
    return (pos, pos + end, " " + REDACTED) if end else None


def redact_config(value: Any, key: str = "") -> Any:
    """A deep copy of ``value`` with credential values and URL userinfo replaced by ``<redacted>``
    (``None``, ``""`` and booleans under a credential's key are kept: they hold no secret)."""
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if is_secret_key(str(k)) and v not in (None, "") and not isinstance(v, bool)
                else redact_config(v, str(k))
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_config(item, key) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """A log filter that rewrites each record's message with its credentials redacted: for the
    loggers of libraries that log request URLs (httpx logs every one, query string included) and
    for the handlers of a command, so that no log line carries a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a record whose arguments do not fit its format: left as is
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = RedactingFilter()


def redact_logs(*targets: str | logging.Handler) -> None:
    """Adds the redacting filter (once) to the named loggers and to the given handlers."""
    for target in targets:
        where = logging.getLogger(target) if isinstance(target, str) else target
        if _FILTER not in where.filters:
            where.addFilter(_FILTER)


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
