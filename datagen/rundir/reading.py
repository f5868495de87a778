"""Reading a run's files: a damaged summary or record is logged with its place and skipped, never fatal."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from apigen_rules.jsonl import read_jsonl, read_models

log = logging.getLogger(__name__)

Record = TypeVar("Record", bound=BaseModel)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON summary, or None when it is missing or unreadable (summaries are rewritten from the
    JSONL records, so a damaged one loses nothing)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        log.warning("%s: expected a JSON summary, found unreadable content (%s); ignored", path, exc)
        return None
    return value if isinstance(value, dict) else None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSONL file; every damaged line is logged with its place and skipped."""
    rows, problems = read_jsonl(path)
    for problem in problems:
        log.warning("%s", problem)
    return rows


def read_records(path: Path, model: type[Record]) -> list[Record]:
    """The records of ``path`` that are valid ``model`` instances; every other line is logged with its
    place and skipped."""
    records, problems = read_models(path, model)
    for problem in problems:
        log.warning("%s", problem)
    return records
