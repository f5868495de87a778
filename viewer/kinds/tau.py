"""A τ-bench-style evaluation (``eval tau --out DIR``): pass^k, failure classes, user-error flags;
tasks with their trials' pass^k, and every trial as a dialogue."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from apigen_rules.fields import mapping, number, text_of, texts
from apigen_rules.redact import redact_config
from datagen.rundir import TauRun, read_json, read_rows
from evaluation.intervals import Interval
from evaluation.report.collect import TauResult, curve
from evaluation.tau.passk import pass_hat_k
from viewer import dialogues
from viewer.kinds.base import Kind, Options, counts_table, settings_section
from viewer.site import Collection, Column, Section, Source, slugify

TASK_COLUMNS = [
    Column("trials", "trials", "num"),
    Column("successes", "successes", "num"),
    Column("pass1", "pass^1", "num"),
    Column("passn", "pass^n", "num"),
    Column("failures", "failure classes", "list", filter=True),
    Column("user_error", "user error", "bool", filter=True),
    Column("gold_noop", "gold is a no-op", "bool", filter=True),
]
TRIAL_COLUMNS = [
    Column("task", "task", "ref", search=True, target="tasks"),
    Column("trial", "trial", "num"),
    Column("success", "verdict", "verdict", filter=True),
    Column("failure", "failure class", filter=True),
    Column("user_error", "user error", "bool", filter=True),
    Column("reward", "reward", "num"),
    Column("turns", "user turns", "num"),
    Column("calls", "tool calls", "num"),
    Column("termination", "ended by", filter=True),
]


def trial_id(row: dict[str, Any]) -> str:
    return f"{text_of(row.get('task_id'))}#{text_of(row.get('trial'))}"


def _tasks(rows: list[dict[str, Any]]):
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[text_of(row.get("task_id"))].append(row)
    for task_id, trials in sorted(grouped.items()):
        n = len(trials)
        c = sum(bool(t.get("success")) for t in trials)
        passk = {str(k): round(pass_hat_k(c, n, k), 4) for k in range(1, n + 1)}
        failures = Counter(text_of(t.get("failure")) for t in trials if not t.get("success"))
        user_errors = sum(t.get("failure") == "user_error" for t in trials)
        yield (
            {
                "id": task_id,
                "trials": n,
                "successes": c,
                "pass1": passk["1"],
                "passn": passk[str(n)],
                "failures": sorted(failures),
                "user_error": bool(user_errors),
                "gold_noop": any(t.get("gold_noop") for t in trials),
            },
            {
                "id": task_id,
                "trials": n,
                "successes": c,
                "mean_reward": round(sum(number(t.get("reward")) or 0.0 for t in trials) / n, 4),
                "pass_k": passk,
                "failures": dict(failures),
                "user_errors": user_errors,
                "gold_noop": any(t.get("gold_noop") for t in trials),
                "trial_ids": [
                    {"id": trial_id(t), "success": t.get("success"), "failure": t.get("failure")}
                    for t in sorted(trials, key=lambda t: number(t.get("trial")) or 0)
                ],
            },
        )


def _trials(rows: list[dict[str, Any]]):
    for row in rows:
        row_id = trial_id(row)
        listed = dialogues.list_row(row, row_id)
        listed.update(
            task=row.get("task_id"),
            trial=row.get("trial"),
            reward=row.get("reward"),
            user_error=row.get("failure") == "user_error",
        )
        record = dialogues.detail(row, row_id, row.get("state_diff_vs_gold") or [], "")
        if not record["state_diff"]:
            state_match = mapping(row.get("checks")).get("state_match")
            record["state_diff_note"] = (
                "the final state equals the gold end state" if state_match else "no diff recorded"
            )
        record["user_error"] = row.get("failure") == "user_error"
        yield listed, record


def _point(value: float | None, interval: Interval | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} [{interval.low:.3f}, {interval.high:.3f}]" if interval else f"{value:.3f}"


def _curve_table(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """pass^k per curve, each value with its 95% interval over tasks (the run's own, else computed
    from its per-task successes)."""
    run = TauResult(text_of(summary.get("agent", "?")), text_of(summary.get("env", "?")), path, summary)
    curves = [
        ("all tasks", "pass_k"),
        ("tasks whose gold changes the state", "pass_k_state_changing_only"),
        ("without tasks with a user error", "pass_k_without_user_error_tasks"),
    ]
    points = {key: run.pass_k(key) for _, key in curves}
    ks = sorted({k for c in points.values() for k in c})
    rows = []
    for name, key in curves:
        intervals = run.pass_k_intervals(key) if points[key] else {}
        rows.append([name, *(_point(points[key].get(k), intervals.get(str(k))) for k in ks)])
    return {
        "header": ["tasks", *(f"pass^k k={k} [95%]" for k in ks)],
        "rows": rows,
        "numeric": set(range(1, len(ks) + 1)),
    }


def build(path: Path, options: Options) -> Source:
    run = TauRun(path)
    summary = run.read_summary() or {}
    rows = read_rows(run.results)
    recipe = redact_config(run.read_recipe() or {})
    failures = mapping(summary.get("failure_classes")) or dict(
        Counter(text_of(r.get("failure")) for r in rows if not r.get("success"))
    )
    sections = [
        Section("Evaluation", "kv", [
            ("environment", summary.get("env")), ("agent", summary.get("agent")), ("user simulator", summary.get("user")),
            ("tasks (complete)", summary.get("tasks")), ("trials per task", summary.get("trials")),
            ("incomplete tasks", ", ".join(texts(summary.get("incomplete_tasks"))) or "none"),
        ]),
        Section("pass^k", "table", _curve_table(summary, path)),
        Section("Failure classes", "table", counts_table(failures, ["class", "trials"])),
        Section("Flags", "kv", [
            ("tasks with a user error (the simulator invented a fact)", ", ".join(texts(summary.get("user_error_tasks"))) or "none"),
            ("tasks whose gold end state is the start state", ", ".join(texts(summary.get("noop_gold_tasks"))) or "none"),
        ]),
    ]  # fmt: skip
    if recipe:
        sections.append(settings_section(recipe, "Settings", "credentials redacted"))
    per_task = read_json(run.per_task)
    headline = ", ".join(f"pass^{k} {v:.3f}" for k, v in list(curve(summary.get("pass_k")).items())[:2])
    return Source(
        slug=slugify(f"{path.parent.name}-{path.name}", options.slugs),
        title=f"τ evaluation {text_of(summary.get('agent', path.name))} on {text_of(summary.get('env', '?'))}",
        kind="τ evaluation",
        sections=sections,
        collections=[
            Collection("tasks", "Tasks", "tau_task", TASK_COLUMNS, _tasks(rows)),
            Collection("trials", "Trials", "dialogue", TRIAL_COLUMNS, _trials(rows)),
        ],
        headline=headline or f"{len(per_task or {})} tasks",
    )


def _detect(path: Path) -> bool:
    run = TauRun(path)
    return path.is_dir() and (run.summary.is_file() or run.results.is_file())


KIND = Kind("τ evaluation", _detect, build)
