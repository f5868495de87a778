"""Result and score files in BFCL's own layout, and the verdicts beside them (the score folder's CSV
tables are :mod:`evaluation.bfcl.tables`, its summary :mod:`evaluation.bfcl.summary`).

A result file is ``BFCL_v4_<category>_result.json``: one JSON object per line with ``id`` and the
raw ``result`` (text for prompt-mode models, a list of ``{name: arguments-json}`` for FC models, a
list of turns of steps for multi-turn), so the official ``bfcl evaluate`` can re-score it. The run's
settings beside it (:class:`datagen.rundir.BfclRun`) record model, format and data version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_rules.jsonl import numbered_objects
from datagen.rundir import BfclRun, load_settings
from evaluation.bfcl import data
from evaluation.bfcl.handlers import short
from evaluation.bfcl.scoring import CategoryScore, official_score_lines

log = logging.getLogger(__name__)


def id_index(item_id: str) -> int:
    """An item's position in its category (``live_simple_12-3-1`` -> 12): BFCL's sort key."""
    index = item_id.split(":")[0].rsplit("_", 1)[-1].split("-")[0]
    if not index.isdigit():
        raise ValueError(f"expected a BFCL item id ending in _<index>, found {item_id!r}")
    return int(index)


def find_result_files(result_dir: Path) -> dict[str, Path]:
    """Category -> result file, searching the directory recursively."""
    found: dict[str, Path] = {}
    for category, path in BfclRun.find_result_files(result_dir):
        if category in data.ALL_CATEGORIES:
            if category in found:
                raise ValueError(
                    f"two result files for {category!r}: {found[category]} and {path}; "
                    "expected one per category — score each run's directory separately"
                )
            found[category] = path
    return found


@dataclass
class ResultFile:
    """One result file as read: its rows (one per id), and what could not be read, by line."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "FILE:LINE: expected ..., found ..."
    duplicates: dict[str, str] = field(default_factory=dict)  # id -> the lines that give it

    @property
    def problems(self) -> list[str]:
        return self.unreadable + list(self.duplicates.values())


def _row_problem(value: dict[str, Any], known_ids: set[str] | None, category: str | None) -> str:
    """What is wrong with one line's object as a result row ("" when nothing)."""
    item_id = value.get("id")
    if not isinstance(item_id, str):
        keys = ", ".join(sorted(str(k) for k in value)[:6]) or "none"
        return (
            f'expected an "id" string, found {short(item_id) if "id" in value else f"no id (keys: {keys})"}'
        )
    if "result" not in value:
        return f'expected a "result" beside id {short(item_id)}, found none'
    if known_ids is not None and item_id not in known_ids:
        return (
            f"expected an id of {category} in bfcl-eval {data.installed_version()}, found {short(item_id)} "
            "(results of another data version?)"
        )
    return ""


def load_result_file(path: Path, category: str | None = None) -> ResultFile:
    """Read a result file line by line; a line that cannot be used is reported, never fatal.

    With ``category``, ids are checked against that category's installed items. An id given on
    several lines is kept once and reported with all its lines (the scorer fails it).
    """
    known_ids = {e.id for e in data.load_entries(category)} if category else None
    where = category or "result"
    loaded = ResultFile(path)
    first_line: dict[str, int] = {}
    lines_of: dict[str, list[int]] = {}
    # The toolkit's one JSONL reader: a damaged line, a folder or a symlink loop is a problem line.
    numbered, unreadable = numbered_objects(path, label=str(path))
    loaded.unreadable += [f"{problem}, counted as a failed {where} item" for problem in unreadable]
    for number, value in numbered:
        problem = _row_problem(value, known_ids, category)
        if problem:
            loaded.unreadable.append(f"{path}:{number}: {problem}; skipped, counted as a failed {where} item")
            continue
        item_id = value["id"]
        if item_id in first_line:
            lines_of.setdefault(item_id, [first_line[item_id]]).append(number)
            continue
        first_line[item_id] = number
        loaded.rows.append(value)
    for item_id, numbers in lines_of.items():
        listed = ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"
        loaded.duplicates[item_id] = (
            f"{path}:{numbers[1]}: expected each id once, found {short(item_id)} on lines {listed}; "
            "which one is the model's answer is unknown, so the item counts as failed"
        )
    return loaded


def read_results(path: Path) -> list[dict[str, Any]]:
    """The readable rows of a result file (problems are logged; see :func:`load_result_file`)."""
    loaded = load_result_file(path)
    for problem in loaded.problems:
        log.warning("%s", problem)
    return loaded.rows


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def find_metadata(result_dir: Path) -> Path | None:
    """The settings file of the nearest BFCL run at or above the result directory."""
    for folder in [result_dir, *result_dir.parents]:
        path = BfclRun(folder).settings_file()
        if path is not None:
            return path
    return None


def read_metadata(result_dir: Path) -> dict[str, Any]:
    """The settings of the nearest BFCL run at or above the result directory; {} if none.

    ValueError (one line: file, expected, found) when they cannot be read."""
    path = find_metadata(result_dir)
    return {} if path is None else load_settings(path)


def write_verdicts(score_dir: Path, scores: dict[str, CategoryScore]) -> None:
    """verdicts.jsonl (every item, with the failure reason) and BFCL-layout per-category score files."""
    score_dir.mkdir(parents=True, exist_ok=True)
    with BfclRun.verdicts_file(score_dir).open("w", encoding="utf-8") as handle:
        for category, score in scores.items():
            for item in score.items:
                handle.write(json.dumps({"category": category, **item.__dict__}) + "\n")
    for category, score in scores.items():
        path = BfclRun.category_score_file(score_dir, category)
        path.write_text("\n".join(official_score_lines(score)) + "\n", encoding="utf-8")
