"""A scored run's summary: summary.md, the interval table, the score folder as a whole, and the table
``bfcl-score`` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun
from evaluation.bfcl import data, results, tables
from evaluation.bfcl.scoring import CategoryScore, score_json, summarise


def _decoding(metadata: dict[str, Any]) -> str:
    decoder = metadata.get("decoder") or {}
    if not decoder:
        return "decoding not recorded"
    mode = (
        "strict (BFCL's decoding)"
        if decoder.get("strict", True)
        else "lenient (the runtime's forgiving parsers)"
    )
    return f"{mode}: {decoder.get('reason', '')}"


def _bounds(interval: dict[str, float] | None) -> str:
    """`[low, high]` in percent, or "" when there is no interval."""
    if not interval:
        return ""
    return f"[{interval['low'] * 100:.1f}, {interval['high'] * 100:.1f}]"


def _with_bounds(value: float, interval: dict[str, float] | None) -> str:
    bounds = _bounds(interval)
    return f"{tables.percent(value)} {bounds}" if bounds else tables.percent(value)


def _underscore_line(metadata: dict[str, Any]) -> str:
    rule = metadata.get("underscore_to_dot") or {}
    if not rule:
        return ""
    names = "with dots replaced by underscores" if rule.get("value") else "as written"
    return f"- function names checked {names} ({rule.get('source', '?')})"


def markdown_summary(
    model: str,
    metadata: dict[str, Any],
    scores: dict[str, CategoryScore],
    intervals: dict[str, Any] | None = None,
) -> str:
    """The run's summary.md; ``intervals`` is what score_json puts under "intervals"."""
    s = summarise(scores)
    intervals = intervals or {}
    overall, categories = intervals.get("overall") or {}, intervals.get("categories") or {}

    def group(key: str) -> str:
        return _with_bounds(s[key], overall.get(key))

    lines = [
        f"# BFCL results: {model}",
        "",
        f"- format: `{metadata.get('format', '?')}`, {_decoding(metadata)}; bfcl-eval data: "
        f"`{metadata.get('bfcl_eval_version', data.installed_version())}`",
        *filter(None, [_underscore_line(metadata)]),
        f"- overall (v4 weights): **{group('overall_v4')}**; overall (v3 formula): **{group('overall_v3')}**",
        f"- non-live {group('non_live')} · live {group('live')} · irrelevance {group('irrelevance')} · "
        f"multi-turn {group('multi_turn')} · agentic {group('agentic')}",
        "",
        "Categories not evaluated count as 0 in the overall scores, as on the leaderboard.",
        *([f"Brackets: 95% intervals ({intervals['method']})."] if intervals.get("method") else []),
        "",
        "| category | accuracy | 95% interval | correct | total |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for category in data.ALL_CATEGORIES:
        if category in scores:
            sc = scores[category]
            note = " (partial)" if sc.partial else ""
            bounds = _bounds(categories.get(category)) or "–"
            lines.append(
                f"| {category}{note} | {tables.percent(sc.accuracy)} | {bounds} | {sc.correct} | {sc.total} |"
            )
        else:
            reason = data.SKIPPED.get(category, "no result file")
            lines.append(f"| {category} | N/A | – | – | – ({reason}) |")
    for title, key in (("Warnings", "warnings"), ("Result-file problems", "problems")):
        if metadata.get(key):
            lines += ["", f"## {title}", "", *(f"- {line}" for line in metadata[key])]
    failures: dict[str, int] = {}
    for score in scores.values():
        for item in score.items:
            if not item.valid:
                failures[item.error_type] = failures.get(item.error_type, 0) + 1
    if failures:
        lines += ["", "## Failure reasons", "", "| error type | items |", "| --- | ---: |"]
        lines += [f"| {k} | {v} |" for k, v in sorted(failures.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def write_reports(
    score_dir: Path, model: str, settings: dict[str, Any], scores: dict[str, CategoryScore]
) -> dict[str, Any]:
    """Writes the score folder; returns the scores as `--json` prints them (intervals included)."""
    report = score_json(scores, settings)
    tables.write_score_tables(score_dir, model, scores)
    tables.write_interval_table(score_dir, report["intervals"])
    results.write_verdicts(score_dir, scores)
    BfclRun.summary_file(score_dir).write_text(
        markdown_summary(model, settings, scores, report["intervals"]), encoding="utf-8"
    )
    BfclRun.scores_file(score_dir).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _printed_bounds(interval: dict[str, float]) -> str:
    return f"[{interval['low'] * 100:5.1f}, {interval['high'] * 100:5.1f}]"


def table_text(scores: dict[str, CategoryScore], intervals: dict[str, Any]) -> str:
    """The table ``bfcl-score`` prints: every category, then the overall scores, with intervals."""
    summary = summarise(scores)
    lines = [
        f"{category:<26} {score.accuracy * 100:6.2f}% {_printed_bounds(intervals['categories'][category])}  "
        f"({score.correct}/{score.total})"
        for category, score in scores.items()
    ]
    for label, key in (("overall (v4 weights)", "overall_v4"), ("overall (v3 formula)", "overall_v3")):
        lines.append(f"{label:<26} {summary[key] * 100:6.2f}% {_printed_bounds(intervals['overall'][key])}")
    lines.append(
        "95% intervals: Wilson per category; the overall scores by bootstrap over items within categories"
    )
    return "\n".join(lines)
