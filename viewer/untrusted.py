"""The one rule for text from runs, datasets and evaluations in the viewer's pages.

Everything a model, a user simulator, a model card or a hand-edited file wrote is untrusted: it may be
any JSON value where a string was expected, hold any character (a lone surrogate, a control character,
an HTML tag, a megabyte without a space) and any key (``__proto__``, ``constructor``). It is data:

- a link is written only when :func:`safe_href` accepts its target (relative, ``http``, ``https``);
  anything else (``javascript:``, ``data:``, ``file:``, ``vbscript:`` ...) is shown as text;
- data files are two JSON string literals handed to ``JSON.parse`` (:func:`data_script`), so no string
  can end the script and no key can reach a prototype; text that is not valid Unicode is escaped by
  ``apigen_rules.jsonl.json_text``, never a failed write;
- static pages show a field of any type as text (:func:`shown`), clipped to :data:`SHOWN_CHARS`;
- the Python side reads fields through ``apigen_rules.fields`` (``mapping``, ``items``, ``text_of``,
  ``number``), so a field of the wrong type is an empty value or its text, never a dead source.

``viewer/static/app.js`` follows the same rule on the JavaScript side (``asText``, ``list``, ``obj``);
it builds only relative links, from encoded parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apigen_rules.fields import finite, number, text_of
from apigen_rules.jsonl import json_text

ALLOWED_SCHEMES = frozenset({"http", "https"})
SHOWN_CHARS = 2000  # a value on a static page longer than this is clipped (the data files keep it whole)
# Browsers drop ASCII tab and newlines anywhere in a URL and C0 controls and spaces at its ends before
# they read the scheme ("java\tscript:" is "javascript:"), so the rule reads the scheme the same way.
_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_TRIMMED = "".join(chr(c) for c in range(0x21))
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def safe_href(target: Any) -> str | None:
    """``target`` when a page may link to it: a relative reference, or an ``http``/``https`` URL;
    None for anything else (another scheme, a value that is not a string)."""
    if not isinstance(target, str) or not target:
        return None
    seen = _URL_IGNORED.sub("", target).strip(_URL_TRIMMED).replace("\\", "/")
    if not seen:
        return None
    scheme = _SCHEME.match(seen)
    if scheme is None:
        return target if not seen.startswith("//") else None  # "//host" leaves the site
    return target if scheme.group(1).lower() in ALLOWED_SCHEMES else None


@dataclass(frozen=True)
class Link:
    """A table cell the page shows as a link (any other cell, a mapping included, is text)."""

    href: str
    text: str


def link(href: Any, text: Any) -> Link | str:
    """A cell linking to ``href`` from a file (a model card's licence link): a :class:`Link` when
    ``href`` passes :func:`safe_href` and names its host (a relative link in a card is relative to
    the card, not to the site), else the text alone."""
    target = safe_href(href)
    if target is None or not _SCHEME.match(target.strip(_URL_TRIMMED)):
        return text_of(text)
    return Link(target, text_of(text))


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A field as a static page shows it: text, clipped to ``limit`` characters."""
    shown_text = text_of(value)
    if len(shown_text) <= limit:
        return shown_text
    return f"{shown_text[:limit]}… ({len(shown_text) - limit:,} more characters)"


def formatted(value: Any, spec: str, default: str = "–") -> str:
    """A number from a summary written with ``spec`` (``",.0f"``, ``".1%"``); ``default`` where the
    field is missing or not a number."""
    n = number(value)
    return default if n is None else format(n, spec)


def data_json(value: Any) -> str:
    """``value`` as JSON that ``JSON.parse`` reads and UTF-8 can hold, whatever it contains."""
    try:
        return json_text(value, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: rare, so the walk runs only then
        return json_text(finite(value), separators=(",", ":"), default=str)


def data_script(key: str, value_json: str) -> str:
    """One data file: ``VIEW.put(key, text)`` where both are string literals and app.js parses the
    text with ``JSON.parse``; an object literal would let a ``__proto__`` key set a prototype."""
    return f"VIEW.put({json_text(key)},{json_text(value_json)});\n"
