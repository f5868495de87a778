"""A BFCL-style evaluation (``eval bfcl --out DIR``): the scores, and every item's verdict with its
reason, question and raw model output, filterable by category and error type."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun, read_json, read_rows
from viewer.kinds import Kind, Options
from viewer.site import Collection, Column, Section, Source, slugify

log = logging.getLogger(__name__)

ITEM_COLUMNS = [
    Column("category", "category", filter=True),
    Column("valid", "correct", "bool", filter=True),
    Column("error_type", "error type", filter=True),
    Column("error", "reason", search=True),
    Column("decoded", "a call decoded", "bool", filter=True),
]


def _questions(category: str) -> dict[str, list[str]]:
    """Item id -> the user turns of its question, from the installed bfcl-eval (empty without it)."""
    from evaluation.bfcl import data

    try:
        entries = data.load_entries(category)
    except Exception as exc:  # bfcl-eval missing, or a category this version does not have
        log.info("view: no BFCL questions for %s (%s)", category, exc)
        return {}
    return {
        e.id: [m.get("content", "") for turn in e.question for m in turn if m.get("role") == "user"]
        for e in entries
    }


def _results(path: Path) -> dict[str, dict[str, Any]]:
    from evaluation.bfcl.results import find_result_files, read_results

    try:
        files = find_result_files(path)
    except ValueError as exc:
        log.warning("%s", exc)
        return {}
    return {
        category: {str(r["id"]): r.get("result") for r in read_results(file)}
        for category, file in files.items()
    }


def _items(verdicts: list[dict[str, Any]], path: Path):
    results = _results(path)
    questions: dict[str, dict[str, list[str]]] = {}
    for v in verdicts:
        category = str(v.get("category"))
        if category not in questions:
            questions[category] = _questions(category)
        item_id = str(v.get("id"))
        listed = {
            "id": item_id,
            "category": category,
            "valid": bool(v.get("valid")),
            "error_type": v.get("error_type") or (None if v.get("valid") else "unknown"),
            "error": str(v.get("error") or "")[:200],
            "decoded": v.get("decoded"),
        }
        record = {**v, "id": item_id, "question": questions[category].get(item_id, [])}
        if item_id in results.get(category, {}):
            record["result"] = results[category][item_id]
        yield listed, record


def _bounds(intervals: Any, name: str) -> str:
    """`[low, high]` in percent from scores.json's intervals (Wilson per category, bootstrap overall)."""
    from evaluation.report.collect import interval_of

    found = interval_of(intervals.get(name)) if isinstance(intervals, dict) else None
    return f"[{100 * found.low:.1f}, {100 * found.high:.1f}]" if found else "–"


def build(path: Path, options: Options) -> Source:
    run = BfclRun(path)
    metadata = run.read_metadata() or {}
    scores = read_json(BfclRun.scores_file(run.score_dir)) or {}
    verdicts = read_rows(BfclRun.verdicts_file(run.score_dir))
    overall = scores.get("overall") or {}
    categories = scores.get("categories") or {}
    intervals = scores.get("intervals") if isinstance(scores.get("intervals"), dict) else {}
    errors: dict[str, int] = {}
    for v in verdicts:
        if not v.get("valid"):
            errors[str(v.get("error_type") or "unknown")] = (
                errors.get(str(v.get("error_type") or "unknown"), 0) + 1
            )
    model = str(metadata.get("label") or metadata.get("model") or path.name)
    sections = [
        Section("Run", "kv", [(k, metadata.get(k)) for k in ("model", "format", "bfcl_eval_version", "decoder", "categories") if k in metadata]),
        Section("Overall", "table", {"header": ["score", "value", "95% interval"], "rows": [[k, f"{100 * v:.2f}%", _bounds(intervals.get("overall"), k)] for k, v in overall.items() if isinstance(v, (int, float))], "numeric": {1}}),
        Section("Categories", "table", {"header": ["category", "accuracy", "95% interval"], "rows": [[k, f"{100 * v:.2f}%", _bounds(intervals.get("categories"), k)] for k, v in categories.items()], "numeric": {1}}),
        Section("Failure reasons", "table", {"header": ["error type", "items"], "rows": sorted(errors.items(), key=lambda kv: -kv[1]), "numeric": {1}}),
    ]  # fmt: skip
    if not scores:
        sections.insert(
            0,
            Section(
                "Not scored",
                "kv",
                [("note", f"no scores under {run.score_dir}; run `apigen-mt eval bfcl-score {path}`")],
            ),
        )
    v4 = overall.get("overall_v4")
    return Source(
        slug=slugify(f"{path.parent.name}-{path.name}", options.slugs),
        title=f"BFCL evaluation {model}",
        kind="BFCL evaluation",
        sections=sections,
        collections=[Collection("items", "Items", "bfcl_item", ITEM_COLUMNS, _items(verdicts, path))],
        headline=f"overall (v4) {100 * v4:.1f}%" if isinstance(v4, (int, float)) else "",
    )


KIND = Kind("BFCL evaluation", lambda path: path.is_dir() and BfclRun(path).is_run(), build)
