"""A τ run's figures from its rows: pass^k with its interval over tasks (all tasks, the tasks whose gold
changes the state, the tasks the simulated user never spoiled), the simulated user's share of the
failures, how the dialogues ended, and each task's trials. ``format_summary`` prints them."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from evaluation.intervals import Interval, wilson_interval
from evaluation.tau.passk import pass_k_curve, pass_k_table
from evaluation.tau.tau2_format import row_termination


def per_task(rows: list[dict[str, Any]], task_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Each task's trials: successes, mean reward, failure classes, whether its gold is a no-op."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["task_id"] in task_ids:
            grouped[row["task_id"]].append(row)
    return {
        task_id: {
            "trials": len(trials),
            "successes": sum(bool(r["success"]) for r in trials),
            "mean_reward": sum(float(r["reward"]) for r in trials) / len(trials),
            "failures": dict(Counter(r["failure"] for r in trials if not r["success"])),
            "gold_noop": any(r.get("gold_noop") for r in trials),
        }
        for task_id, trials in sorted(grouped.items())
    }


def intervals_json(table: dict[int, Interval]) -> dict[str, dict[str, float]]:
    return {str(k): interval.as_dict() for k, interval in table.items()}


def user_error_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How many failed trials the simulated user spoiled (it stated a fact its instruction does not
    have), with a Wilson interval on that share of the failures."""
    failed = [r for r in rows if not r["success"]]
    spoiled = sum(1 for r in failed if r.get("failure") == "user_error")
    return {
        "trials": len(rows),
        "failed_trials": len(failed),
        "user_error_trials": spoiled,
        "share_of_failures": wilson_interval(spoiled, len(failed)).as_dict(),
    }


def summarize(rows: list[dict[str, Any]], trials: int, task_ids: set[str]) -> dict[str, Any]:
    """pass^k with and without the tasks whose gold end state is the start state, and without the tasks
    the simulated user spoiled, each with its interval; failure classes and terminations."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    noop: set[str] = set()
    user_errors: set[str] = set()
    ours = [r for r in sorted(rows, key=lambda r: (r["task_id"], r["trial"])) if r["task_id"] in task_ids]
    for row in ours:
        by_task[row["task_id"]].append(bool(row["success"]))
        if row.get("gold_noop"):
            noop.add(row["task_id"])
        if row.get("failure") == "user_error":
            user_errors.add(row["task_id"])
    complete = {t: v for t, v in by_task.items() if len(v) == trials}
    changing = {t: v for t, v in complete.items() if t not in noop}
    # A trial the simulated user spoiled says nothing about the agent: this curve leaves such tasks out.
    user_clean = {t: v for t, v in complete.items() if t not in user_errors}
    failures = Counter(r["failure"] for r in ours if not r["success"])
    return {
        "tasks": len(complete),
        "incomplete_tasks": sorted(set(by_task) - set(complete)),
        "trials": trials,
        "pass_k": {str(k): v for k, v in pass_k_curve(complete).items()},
        "pass_k_interval": intervals_json(pass_k_table(complete)),
        "pass_k_state_changing_only": {str(k): v for k, v in pass_k_curve(changing).items()},
        "pass_k_state_changing_only_interval": intervals_json(pass_k_table(changing)),
        "pass_k_without_user_error_tasks": {str(k): v for k, v in pass_k_curve(user_clean).items()},
        "pass_k_without_user_error_tasks_interval": intervals_json(pass_k_table(user_clean)),
        "user_error_tasks": sorted(user_errors & set(complete)),
        "user_errors": user_error_figures([r for r in ours if r["task_id"] in complete]),
        "noop_gold_tasks": sorted(noop & set(complete)),
        "failure_classes": dict(failures),
        "terminations": dict(Counter(row_termination(r) for r in ours)),
        "per_task_successes": {t: sum(v) for t, v in sorted(complete.items())},
    }


def _with_interval(summary: dict[str, Any], key: str, k: str) -> str:
    found = (summary.get(f"{key}_interval") or {}).get(k)
    if found is not None:
        return Interval(**found).text()
    value = (summary.get(key) or {}).get(k)
    return "-" if value is None else f"{value:.3f}"


def format_summary(summary: dict[str, Any]) -> str:
    read_by = summary.get("tool_calls_read_by")
    lines = [
        f"{summary['env']}: agent {summary['agent']} vs user {summary['user']} — {summary['tasks']} tasks × {summary['trials']} trials"
        + (f"; tool calls read by the {read_by}'s parser" if read_by else "")
    ]
    level = next(iter((summary.get("pass_k_interval") or {}).values()), {}).get("level", 0.95)
    lines.append(f"k  pass^k [{level:.0%} interval over tasks]   state-changing tasks only")
    for k in summary["pass_k"]:
        lines.append(
            f"{k:<2} {_with_interval(summary, 'pass_k', k):<27} "
            f"{_with_interval(summary, 'pass_k_state_changing_only', k)}"
        )
    lines.append(f"failure classes: {summary['failure_classes'] or 'none'}")
    if summary.get("terminations"):
        lines.append(f"dialogues ended by: {summary['terminations']}")
    lines.append(user_error_line(summary))
    if summary.get("user_error_tasks"):
        clean = ", ".join(
            f"pass^{k} {_with_interval(summary, 'pass_k_without_user_error_tasks', k)}"
            for k in summary["pass_k_without_user_error_tasks"]
        )
        lines.append(
            f"without the tasks the simulated user spoiled {summary['user_error_tasks']}: {clean or 'no tasks left'}"
        )
    if summary["noop_gold_tasks"]:
        lines.append(f"tasks whose gold end state is the start state: {summary['noop_gold_tasks']}")
    return "\n".join(lines)


def user_error_line(summary: dict[str, Any]) -> str:
    figures = summary.get("user_errors") or {}
    failed, spoiled = figures.get("failed_trials", 0), figures.get("user_error_trials", 0)
    if not failed:
        return "simulated user: no failed trials to account for"
    share = Interval(**figures["share_of_failures"]).percent()
    return f"simulated user broke its instruction in {spoiled} of {failed} failed trials: {share}"
