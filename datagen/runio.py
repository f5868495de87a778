"""Append-only JSONL files in a run directory that survive a killed process.

A run killed mid-write (SIGKILL) can leave a truncated last line. Readers skip it and say so;
appenders cut it off before writing, so the next record does not glue onto the fragment.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(complete records, problems) — a truncated or corrupt line is reported, never fatal."""
    if not path.exists():
        return [], []
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with path.open("rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    complete = lines[:-1]  # whatever follows the last newline was never finished
    if lines[-1].strip():
        problems.append(f"{path.name}: incomplete last line ({len(lines[-1])} bytes) skipped")
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{number}: not valid JSON ({exc.msg}); skipped")
    return rows, problems


def repair_tail(path: Path) -> int:
    """Cuts an unfinished last line off ``path``; returns how many bytes were removed."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return 0
        fh.truncate(keep)
    removed = len(data) - keep
    log.warning("%s: removed an unfinished last line (%d bytes) left by a killed run", path, removed)
    return removed


class JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced, so a kill loses at most the line in flight."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(path)
        self._fh = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
