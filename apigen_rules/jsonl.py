"""Append-only JSONL files in a run directory that survive a killed process and damaged lines.

A run killed mid-write (SIGKILL) can leave a truncated last line; a disk, a copy or a hand edit can
damage any line. Nothing here is fatal and nothing is lost:

- readers report every line they cannot use (not UTF-8, not JSON, a number or nesting Python will
  not read, a value that is not an object, an object of the wrong schema) with its file and line
  number, skip it, and go on (a file that is a folder or cannot be read is one such problem);
- a last line without its final newline is a record if it parses (a writer killed between the
  record and the newline) and is kept; only a last line that does not parse is cut off, by the
  appender before it writes, and what is cut is appended to ``<file>.cut`` first, never dropped.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

CUT_SUFFIX = ".cut"  # beside a JSONL file: the unparseable tails cut off it, oldest first


def json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words, for "found ..." in a problem line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"the string {value[:40]!r}{'...' if len(value) > 40 else ''}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _decode_line(raw: bytes) -> tuple[Any, str | None]:
    """(value, None) for a line that parses as JSON, else (None, what the line is instead)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"bytes that are not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"text that is not valid JSON ({exc.msg} at column {exc.colno})"
    except ValueError as exc:  # an integer of 4,301+ digits: Python's int-size guard
        return None, f"a value Python will not read ({str(exc)[:120]})"
    except RecursionError:
        return None, "JSON nested too deeply to read"


def _file_bytes(path: Path) -> tuple[bytes, str | None]:
    """(the file's bytes, None), or (b"", what is at ``path`` instead of a readable file)."""
    try:
        return path.read_bytes(), None
    except IsADirectoryError:
        return b"", "a folder"
    except OSError as exc:  # a symlink loop, a permission, a device
        return b"", f"a path that cannot be read ({exc.strerror or exc})"


def numbered_objects(
    path: Path, label: str | None = None
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """(line number, object) for every usable line of a JSONL file, and one problem per line that is
    not, as ``LABEL:LINE: expected ..., found ...; skipped`` (``label``: default the file's name). A
    missing file has no lines; a folder or an unreadable path is one problem."""
    label = label or path.name
    if not path.exists() and not path.is_symlink():
        return [], []
    data, unreadable = _file_bytes(path)
    if unreadable is not None:
        return [], [f"{label}: expected a file of JSON lines, found {unreadable}; skipped"]
    lines = data.split(b"\n")
    tail = lines.pop()  # whatever follows the last newline
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    numbered = list(enumerate(lines, start=1))
    if tail.strip():
        numbered.append((len(lines) + 1, tail))
    for number, raw in numbered:
        if not raw.strip():
            continue
        value, problem = _decode_line(raw)
        if problem is not None and number > len(lines):
            problems.append(
                f"{label}:{number}: expected a JSON object, found an incomplete last line "
                f"({len(raw)} bytes, {problem}); skipped"
            )
        elif problem is not None:
            problems.append(f"{label}:{number}: expected a JSON object, found {problem}; skipped")
        elif not isinstance(value, dict):
            problems.append(f"{label}:{number}: expected a JSON object, found {json_kind(value)}; skipped")
        else:
            rows.append((number, value))
    return rows, problems


def read_jsonl(path: Path, model: type[BaseModel] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(records, problems): every JSON object in ``path``; with ``model``, only the objects that are
    valid ``model`` instances. Each line left out is one problem naming its file and line."""
    if model is None:
        rows, problems = numbered_objects(path)
        return [row for _, row in rows], problems
    valid, problems = _validated(path, model)
    return [row for row, _ in valid], problems


def read_models(path: Path, model: type[M]) -> tuple[list[M], list[str]]:
    """(records as ``model`` instances, problems) — like :func:`read_jsonl` with a model."""
    valid, problems = _validated(path, model)
    return [record for _, record in valid], problems


def _validated(path: Path, model: type[M]) -> tuple[list[tuple[dict[str, Any], M]], list[str]]:
    rows, problems = numbered_objects(path)
    valid: list[tuple[dict[str, Any], M]] = []
    for number, row in rows:
        try:
            valid.append((row, model.model_validate(row)))
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the record"
            count = exc.error_count()
            problems.append(
                f"{path.name}:{number}: expected a {model.__name__} record, found {where}: "
                f"{first['msg'].removeprefix('Value error, ')}"
                f"{f' (and {count - 1} more problems)' if count > 1 else ''}; skipped"
            )
    return valid, problems


def repair_tail(path: Path) -> int:
    """Makes ``path`` end with a newline so the next record starts a line of its own.

    A last line that parses (a record whose newline the kill prevented) gets its newline; one that
    does not is cut off after being appended to ``<file>.cut``. Returns how many bytes were cut."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return 0
        tail = data[keep:]
        _, problem = _decode_line(tail)
        if problem is None:
            fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            log.warning("%s: the last record had no final newline (a killed run); added it", path)
            return 0
        side = path.with_name(path.name + CUT_SUFFIX)
        with side.open("ab") as out:
            out.write(tail + b"\n")
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(keep)
    log.warning(
        "%s: moved an unfinished last line (%d bytes, %s) left by a killed run to %s",
        path,
        len(tail),
        problem,
        side,
    )
    return len(tail)


def json_text(value: Any, **kwargs: Any) -> str:
    """JSON that can always be written as UTF-8: text that is not valid Unicode (a lone surrogate,
    which a model or a server can send as ``"\\ud800"``) is written as its escape, which reads back
    as the same string, instead of failing the write."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **kwargs)
    return text


class JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced, so a kill loses at most the line in flight."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if (path.exists() or path.is_symlink()) and not path.is_file():
            raise FileExistsError(
                f"{path}: expected a file of JSON lines to append to, found a folder or a link to none; "
                "move it away or write the run elsewhere"
            )
        repair_tail(path)
        self._fh = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        line = json_text(record) + "\n"  # serialised in full first: a failure writes nothing
        self._fh.write(line)
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
    tmp.write_text(json_text(value, indent=2), encoding="utf-8")
    os.replace(tmp, path)
