"""Fields of records nobody vouches for: run files, summaries, datasets and model cards hold whatever a
model, a server, a disk or a hand edit wrote there, so a reader that shows or counts them takes a
field of the wrong type as an empty value or as its text, never as a reason to stop.

The viewer (``viewer.untrusted``), the report (``evaluation.report``) and the funnel count
(``datagen.quality.funnel``) read fields through these functions."""

from __future__ import annotations

import math
from typing import Any

from apigen_rules.jsonl import json_text


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    """``value`` when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int:
    """A count field: ``value`` when it is a whole non-negative number, else 0."""
    n = number(value)
    return int(n) if n is not None and n >= 0 and n.is_integer() else 0


def text_of(value: Any) -> str:
    """Any value as text: a string as it is, None as "", a number as JavaScript's ``String(n)``
    writes it (so the viewer's filters compare alike), anything else as its compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    return json_text(finite(value), separators=(",", ":"), default=str)


def texts(value: Any) -> list[str]:
    """A list field as a list of texts (a lone value as a list of one)."""
    if value is None:
        return []
    return [text_of(v) for v in (value if isinstance(value, list) else [value])]


def _number_text(value: int | float) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
    return str(value)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by its name: Python's JSON reader accepts them in
    a file, strict JSON readers (``JSON.parse``, most tools) do not."""
    if isinstance(value, float) and not math.isfinite(value):
        return _number_text(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
