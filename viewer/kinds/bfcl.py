"""A BFCL-style evaluation (``eval bfcl --out DIR``): the scores, and every item's verdict with its
reason, question and raw model output, filterable by category and error type."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from apigen_rules.fields import mapping, number, text_of
from datagen.rundir import BfclRun, read_json, read_rows
from evaluation.report.collect import saved_intervals
from viewer.kinds.base import Kind, Options, counts_table
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
        category: {text_of(r.get("id")): r.get("result") for r in read_results(file)}
        for category, file in files.items()
    }


def _items(verdicts: list[dict[str, Any]], path: Path):
    results = _results(path)
    questions: dict[str, dict[str, list[str]]] = {}
    for v in verdicts:
        category = text_of(v.get("category"))
        if category not in questions:
            questions[category] = _questions(category)
        item_id = text_of(v.get("id"))
        listed = {
            "id": item_id,
            "category": category,
            "valid": bool(v.get("valid")),
            "error_type": v.get("error_type") or (None if v.get("valid") else "unknown"),
            "error": text_of(v.get("error"))[:200],
            "decoded": v.get("decoded"),
        }
        record = {**v, "id": item_id, "question": questions[category].get(item_id, [])}
        if item_id in results.get(category, {}):
            record["result"] = results[category][item_id]
        yield listed, record


def _percentages(scores: dict[str, Any], intervals: Any) -> list[list[str]]:
    """[name, value in percent, `[low, high]` in percent] per numeric score; the interval as scores.json
    saved it (Wilson per category, bootstrap overall), "–" where it has none or not one."""
    saved = saved_intervals(intervals)
    return [
        [k, f"{100 * n:.2f}%", f"[{100 * i.low:.1f}, {100 * i.high:.1f}]" if (i := saved.get(k)) else "–"]
        for k, v in scores.items()
        if (n := number(v)) is not None
    ]


def build(path: Path, options: Options) -> Source:
    run = BfclRun(path)
    metadata = run.read_metadata() or {}
    scores = read_json(BfclRun.scores_file(run.score_dir)) or {}
    verdicts = read_rows(BfclRun.verdicts_file(run.score_dir))
    overall = mapping(scores.get("overall"))
    categories = mapping(scores.get("categories"))
    intervals = mapping(scores.get("intervals"))
    errors = Counter(text_of(v.get("error_type") or "unknown") for v in verdicts if not v.get("valid"))
    model = text_of(metadata.get("label") or metadata.get("model") or path.name)
    sections = [
        Section("Run", "kv", [(k, metadata.get(k)) for k in ("model", "format", "bfcl_eval_version", "decoder", "categories") if k in metadata]),
        Section("Overall", "table", {"header": ["score", "value", "95% interval"], "rows": _percentages(overall, intervals.get("overall")), "numeric": {1}}),
        Section("Categories", "table", {"header": ["category", "accuracy", "95% interval"], "rows": _percentages(categories, intervals.get("categories")), "numeric": {1}}),
        Section("Failure reasons", "table", counts_table(errors, ["error type", "items"])),
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
    v4 = number(overall.get("overall_v4"))
    return Source(
        slug=slugify(f"{path.parent.name}-{path.name}", options.slugs),
        title=f"BFCL evaluation {model}",
        kind="BFCL evaluation",
        sections=sections,
        collections=[Collection("items", "Items", "bfcl_item", ITEM_COLUMNS, _items(verdicts, path))],
        headline=f"overall (v4) {100 * v4:.1f}%" if v4 is not None else "",
    )


KIND = Kind("BFCL evaluation", lambda path: path.is_dir() and BfclRun(path).is_run(), build)
