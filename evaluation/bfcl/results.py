"""Result and score files: BFCL's own layout, plus our run metadata, CSVs and markdown summary.

A result file is ``BFCL_v4_<category>_result.json``: one JSON object per line with ``id`` and the
raw ``result`` (text for prompt-mode models, a list of ``{name: arguments-json}`` for FC models, a
list of turns of steps for multi-turn), so the official ``bfcl evaluate`` can re-score it. The run's
settings beside it (:class:`datagen.rundir.BfclRun`) record model, format and data version.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun, load_settings
from datagen.runio import numbered_objects
from evaluation.bfcl import data
from evaluation.bfcl.handlers import short
from evaluation.bfcl.scoring import CategoryScore, official_score_lines, summarise

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


def percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _acc(scores: dict[str, CategoryScore], category: str) -> str:
    if category not in scores:
        return "N/A"
    return percent(scores[category].accuracy)


def _group(scores: dict[str, CategoryScore], categories: list[str], value: float) -> str:
    """A group's score, or N/A when none of its categories was evaluated (missing ones count as 0)."""
    return percent(value) if any(c in scores for c in categories) else "N/A"


def _write_csv(path: Path, header: list[str], row: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow(row)


def write_score_tables(score_dir: Path, model: str, scores: dict[str, CategoryScore]) -> None:
    """data_overall/non_live/live/multi_turn/agentic.csv shaped like the leaderboard's, one row for this run."""
    score_dir.mkdir(parents=True, exist_ok=True)
    s = summarise(scores)
    _write_csv(
        score_dir / "data_non_live.csv",
        [
            "Rank",
            "Model",
            "Non-Live Overall Acc",
            "AST Summary",
            "Simple AST",
            "Python Simple AST",
            "Java Simple AST",
            "JavaScript Simple AST",
            "Multiple AST",
            "Parallel AST",
            "Parallel Multiple AST",
            "Irrelevance Detection",
        ],
        [
            "1",
            model,
            percent(s["non_live"]),
            percent(s["non_live_ast"]),
            percent(s["non_live_simple"]),
            _acc(scores, "simple_python"),
            _acc(scores, "simple_java"),
            _acc(scores, "simple_javascript"),
            _acc(scores, "multiple"),
            _acc(scores, "parallel"),
            _acc(scores, "parallel_multiple"),
            _acc(scores, "irrelevance"),
        ],
    )
    _write_csv(
        score_dir / "data_live.csv",
        [
            "Rank",
            "Model",
            "Live Overall Acc",
            "AST Summary",
            "Python Simple AST",
            "Python Multiple AST",
            "Python Parallel AST",
            "Python Parallel Multiple AST",
            "Irrelevance Detection",
            "Relevance Detection",
        ],
        [
            "1",
            model,
            percent(s["live"]),
            percent(s["live"]),
            _acc(scores, "live_simple"),
            _acc(scores, "live_multiple"),
            _acc(scores, "live_parallel"),
            _acc(scores, "live_parallel_multiple"),
            _acc(scores, "live_irrelevance"),
            _acc(scores, "live_relevance"),
        ],
    )
    _write_csv(
        score_dir / "data_multi_turn.csv",
        ["Rank", "Model", "Multi Turn Overall Acc", "Base", "Miss Func", "Miss Param", "Long Context"],
        ["1", model, percent(s["multi_turn"]), *(_acc(scores, c) for c in data.MULTI_TURN)],
    )
    _write_csv(
        score_dir / "data_agentic.csv",
        [
            "Rank",
            "Model",
            "Agentic Overall Acc",
            "Web Search Summary",
            "Web Search Base",
            "Web Search No Snippet",
            "Memory Summary",
            "Memory KV",
            "Memory Vector",
            "Memory Recursive Summarization",
        ],
        [
            "1",
            model,
            _group(scores, data.AGENTIC, s["agentic"]),
            _group(scores, data.WEB_SEARCH, s["web_search"]),
            *(_acc(scores, c) for c in data.WEB_SEARCH),
            _group(scores, data.MEMORY, s["memory"]),
            *(_acc(scores, c) for c in data.MEMORY),
        ],
    )
    _write_csv(
        score_dir / "data_overall.csv",
        [
            "Rank",
            "Overall Acc",
            "Overall Acc (v3 formula)",
            "Model",
            "Non-Live AST Acc",
            "Non-Live Simple AST",
            "Non-Live Multiple AST",
            "Non-Live Parallel AST",
            "Non-Live Parallel Multiple AST",
            "Live Acc",
            "Live Simple AST",
            "Live Multiple AST",
            "Live Parallel AST",
            "Live Parallel Multiple AST",
            "Multi Turn Acc",
            "Multi Turn Base",
            "Multi Turn Miss Func",
            "Multi Turn Miss Param",
            "Multi Turn Long Context",
            "Web Search Acc",
            "Memory Acc",
            "Memory KV",
            "Memory Vector",
            "Memory Recursive Summarization",
            "Relevance Detection",
            "Irrelevance Detection",
        ],
        [
            "1",
            percent(s["overall_v4"]),
            percent(s["overall_v3"]),
            model,
            percent(s["non_live_ast"]),
            percent(s["non_live_simple"]),
            _acc(scores, "multiple"),
            _acc(scores, "parallel"),
            _acc(scores, "parallel_multiple"),
            percent(s["live"]),
            _acc(scores, "live_simple"),
            _acc(scores, "live_multiple"),
            _acc(scores, "live_parallel"),
            _acc(scores, "live_parallel_multiple"),
            percent(s["multi_turn"]),
            *(_acc(scores, c) for c in data.MULTI_TURN),
            _group(scores, data.WEB_SEARCH, s["web_search"]),
            _group(scores, data.MEMORY, s["memory"]),
            *(_acc(scores, c) for c in data.MEMORY),
            _acc(scores, "live_relevance"),
            percent(s["irrelevance"]),
        ],
    )


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
