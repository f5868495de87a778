"""A next-action evaluation (``eval next-action --out DIR``): the figures overall, per domain and per
tool, what happened on the turns, and every turn with the gold next message beside the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from apigen_rules.redact import redact_config
from datagen.rundir import NextActionRun, read_rows
from viewer.kinds import Kind, Options
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


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _with_bounds(figures: dict[str, Any], key: str) -> str:
    """The figure in percent with its 95% interval over dialogues, where the summary has one."""
    interval = (figures.get("intervals") or {}).get(key)
    if not isinstance(interval, dict) or figures.get(key) is None:
        return _pct(figures.get(key))
    return f"{_pct(figures.get(key))} [{100 * interval['low']:.1f}, {100 * interval['high']:.1f}]"


def _table(by_name: dict[str, dict[str, Any]], what: str) -> dict[str, Any]:
    rows = [
        [name, f["turns"], f["should_call_turns"], *(_with_bounds(f, key) for key, _ in FIGURES)]
        for name, f in by_name.items()
    ]
    return {
        "header": [what, "turns", "should call", *(title for _, title in FIGURES)],
        "rows": rows,
        "numeric": set(range(1, len(FIGURES) + 3)),
    }


def _message(calls: list[dict[str, Any]], content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": [{"function": c} for c in calls]}


def _turns(rows: list[dict[str, Any]]):
    for row in rows:
        outcome = "error" if row.get("error") else row.get("outcome")
        listed = {
            "id": row.get("key"),
            "dialogue": row.get("dialogue_id"),
            "env": row.get("env"),
            "tool": ", ".join(sorted({c["name"] for c in row.get("gold_calls") or []})) or "(text)",
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
                _message(row.get("gold_calls") or [], f"(gold turn) {row.get('gold_content') or ''}".strip()),
                _message(row.get("predicted_calls") or [], f"(model's turn, raw) {row.get('raw') or ''}"),
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
    overall = summary.get("overall") or {}
    sections = [
        Section("Evaluation", "kv", [
            ("model", summary.get("model")), ("data", ", ".join(summary.get("data") or [])), ("split", summary.get("split")),
            ("dialogues", summary.get("dialogues")), ("turns", f"{summary.get('turns_done')}/{summary.get('turns_planned')}"),
            ("turn errors", overall.get("errors")),
        ]),
        Section("Figures", "table", _table({"overall": overall, **(summary.get("per_domain") or {})}, "")),
        Section("Per tool (turns whose gold calls it)", "table", _table(summary.get("per_tool") or {}, "tool")),
        Section("Outcomes", "table", {"header": ["outcome", "turns"], "rows": sorted((overall.get("outcomes") or {}).items(), key=lambda kv: -kv[1]), "numeric": {1}}),
    ]  # fmt: skip
    recipe = redact_config(run.read_recipe() or {})
    if recipe:
        sections.append(
            Section("Settings", "pre", yaml.safe_dump(recipe, sort_keys=False), note="credentials redacted")
        )
    return Source(
        slug=slugify(f"{path.parent.name}-{path.name}", options.slugs),
        title=f"next-action {summary.get('model', path.name)}",
        kind="next-action evaluation",
        sections=sections,
        collections=[Collection("turns", "Turns", "dialogue", TURN_COLUMNS, _turns(rows))],
        headline=f"name match {_pct(overall.get('name_match'))}, exact {_pct(overall.get('exact_match'))}",
    )


def _detect(path: Path) -> bool:
    run = NextActionRun(path)
    return path.is_dir() and (run.summary.is_file() or run.turns.is_file())


KIND = Kind("next-action evaluation", _detect, build)
