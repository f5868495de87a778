"""A next-action evaluation (``eval next-action --out DIR``): the figures overall, per domain and per
tool, what happened on the turns, and every turn with the gold next message beside the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apigen_rules.fields import items, mapping, number, text_of, texts
from apigen_rules.redact import redact_config
from datagen.rundir import NextActionRun, read_rows
from evaluation.report.collect import interval_of
from viewer.kinds.base import Kind, Options, counts_table, settings_section
from viewer.site import Collection, Column, Section, Source, slugify

FIGURES = (
    ("decision_accuracy", "decision"), ("decode_rate", "decode"), ("name_match", "name match"),
    ("exact_match", "exact match"), ("argument_precision", "arg precision"), ("argument_recall", "arg recall"),
    ("env_failure_rate", "would fail in the env"),
)  # fmt: skip
TURN_COLUMNS = [
    Column("dialogue", "dialogue", search=True),
    Column("env", "env", filter=True),
    Column("tool", "gold tool", filter=True),
    Column("success", "exact", "verdict", filter=True),
    Column("failure", "outcome", filter=True),
    Column("env_failed", "would fail", "bool", filter=True),
]


def _pct(value: Any) -> str:
    n = number(value)
    return "–" if n is None else f"{100 * n:.1f}%"


def _with_bounds(figures: dict[str, Any], key: str) -> str:
    """The figure in percent with its 95% interval over dialogues, where the summary has one."""
    interval = interval_of(mapping(figures.get("intervals")).get(key))
    if interval is None or number(figures.get(key)) is None:
        return _pct(figures.get(key))
    return f"{_pct(figures.get(key))} [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def _table(by_name: dict[str, Any], what: str) -> dict[str, Any]:
    rows = [
        [name, f.get("turns"), f.get("should_call_turns"), *(_with_bounds(f, key) for key, _ in FIGURES)]
        for name, f in ((name, mapping(f)) for name, f in by_name.items())
    ]
    return {
        "header": [what, "turns", "should call", *(title for _, title in FIGURES)],
        "rows": rows,
        "numeric": set(range(1, len(FIGURES) + 3)),
    }


def _message(calls: Any, content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": [{"function": c} for c in items(calls)]}


def _turns(rows: list[dict[str, Any]]):
    for row in rows:
        outcome = "error" if row.get("error") else row.get("outcome")
        listed = {
            "id": row.get("key"),
            "dialogue": row.get("dialogue_id"),
            "env": row.get("env"),
            "tool": ", ".join(sorted({text_of(mapping(c).get("name")) for c in items(row.get("gold_calls"))}))
            or "(text)",
            "success": outcome == "right",
            "failure": None if outcome == "right" else outcome,
            "env_failed": row.get("env_failed"),
        }
        record = {
            "id": row.get("key"),
            "success": outcome == "right",
            "failure": listed["failure"],
            "env": row.get("env"),
            "blueprint_id": row.get("blueprint_id"),
            "checks": {"error": row.get("error")} if row.get("error") else {},
            "messages": [
                _message(row.get("gold_calls"), f"(gold turn) {text_of(row.get('gold_content'))}".strip()),
                _message(row.get("predicted_calls"), f"(model's turn, raw) {text_of(row.get('raw'))}"),
            ],
            "extra": {
                k: row.get(k)
                for k in (
                    "index",
                    "parse_error",
                    "env_failed_calls",
                    "arguments_right",
                    "arguments_predicted",
                    "arguments_gold",
                    "usage",
                )
            },  # fmt: skip
        }
        yield listed, record


def build(path: Path, options: Options) -> Source:
    run = NextActionRun(path)
    summary = run.read_summary() or {}
    rows = read_rows(run.turns)
    overall = mapping(summary.get("overall"))
    sections = [
        Section("Evaluation", "kv", [
            ("model", summary.get("model")), ("data", ", ".join(texts(summary.get("data")))), ("split", summary.get("split")),
            ("dialogues", summary.get("dialogues")), ("turns", f"{summary.get('turns_done')}/{summary.get('turns_planned')}"),
            ("turn errors", overall.get("errors")),
        ]),
        Section("Figures", "table", _table({"overall": overall, **mapping(summary.get("per_domain"))}, "")),
        Section("Per tool (turns whose gold calls it)", "table", _table(mapping(summary.get("per_tool")), "tool")),
        Section("Outcomes", "table", counts_table(overall.get("outcomes"), ["outcome", "turns"])),
    ]  # fmt: skip
    recipe = redact_config(run.read_recipe() or {})
    if recipe:
        sections.append(settings_section(recipe, "Settings", "credentials redacted"))
    return Source(
        slug=slugify(f"{path.parent.name}-{path.name}", options.slugs),
        title=f"next-action {text_of(summary.get('model', path.name))}",
        kind="next-action evaluation",
        sections=sections,
        collections=[Collection("turns", "Turns", "dialogue", TURN_COLUMNS, _turns(rows))],
        headline=f"name match {_pct(overall.get('name_match'))}, exact {_pct(overall.get('exact_match'))}",
    )


def _detect(path: Path) -> bool:
    run = NextActionRun(path)
    return path.is_dir() and (run.summary.is_file() or run.turns.is_file())


KIND = Kind("next-action evaluation", _detect, build)
