"""Re-scoring a τ²-bench results file: each simulation's tool calls replayed on our environment and
scored with our verdict, next to τ²'s evaluators on the same messages and the reward the file recorded.

- recorded: ``reward_info.reward`` as τ²'s runner wrote it;
- τ²: τ²'s rule-based evaluators (``datagen.envs.tau2.evaluate.tau2_verdict``) on the file's messages
  and the file's own copy of the task, under τ²'s termination rule (NL assertions need an LLM judge
  and are not judged: such tasks are flagged);
- ours: the calls replayed in order on our environment (agent calls through ``call``, the user's
  device calls through ``call_user``), then ``our_verdict`` (our state hash against the gold replay,
  the information said, τ²'s env assertions) under the same termination rule.

Every simulation where two of them disagree on pass/fail is flagged, with why where it is known: a
replayed call that answered differently from the recorded one, a task that differs from the
installed τ² data, an evaluator that raised.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from datagen.envs.tau2.domain import Tau2Domain, Tau2Environment
from evaluation.tau.passk import is_success, pass_k_table
from evaluation.tau.summary import intervals_json
from evaluation.tau.tau2_read import LoadedResults, UnreadableResults

SOURCES = ("recorded", "tau2", "ours")


def _content(text: str | None) -> Any:
    try:
        return json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return text


def replay(env: Tau2Environment, messages: list[Any]) -> list[str]:
    """Runs every tool call of a τ² trajectory on ``env`` in order; returns one line per call whose
    answer differs from the one recorded in the trajectory (compared as τ²'s evaluator compares)."""
    recorded = {m.id: m.content for m in messages if getattr(m, "role", None) == "tool" and hasattr(m, "id")}
    divergences = []
    for message in messages:
        for call in getattr(message, "tool_calls", None) or []:
            tool_call = {"name": call.name, "arguments": dict(call.arguments)}
            (env.call_user if call.requestor == "user" else env.call)(tool_call)
            ours = env.timeline[-1].tau2_content
            if call.id in recorded and _content(ours) != _content(recorded[call.id]):
                divergences.append(f"{call.name} ({call.id}): the replay answered differently from the run")
    return divergences


@dataclass(frozen=True)
class Verdicts:
    tau2: float | None
    ours: float | None
    tau2_parts: dict[str, float]
    our_parts: dict[str, float]
    notes: list[str]


def _verdicts(domain: Tau2Domain, task: Any, messages: list[Any], termination: str) -> Verdicts:
    from datagen.envs.tau2.evaluate import our_verdict, tau2_verdict

    notes: list[str] = []
    tau2 = ours = None
    tau2_parts: dict[str, float] = {}
    our_parts: dict[str, float] = {}
    try:
        report = tau2_verdict(
            domain, task.id, messages, termination, domain.tau2_environment_constructor, task=task
        )
        tau2, tau2_parts = report.reward, report.parts
        if report.skipped:
            notes.append(f"not judged (needs an LLM judge): {', '.join(report.skipped)}")
    except Exception as exc:  # τ²'s replay raises when a call answers differently from the recording
        notes.append(f"τ²'s evaluator raised {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    try:
        env = domain.env_for_task(task.id)
    except KeyError:
        notes.append(f"task {task.id} is not in the installed τ² data: our verdict needs its gold")
        return Verdicts(tau2, None, tau2_parts, {}, notes)
    notes += replay(env, messages)
    texts = [m.content for m in messages if getattr(m, "role", None) == "assistant" and m.content]
    report = our_verdict(domain, task.id, env, texts, termination)
    ours, our_parts = report.reward, report.parts
    return Verdicts(tau2, ours, tau2_parts, our_parts, notes)


def _task_changed(domain: Tau2Domain, task: Any) -> bool:
    try:
        installed = domain.tau2_task(task.id)
    except KeyError:
        return True
    return installed.evaluation_criteria != task.evaluation_criteria


def _disagreements(row: dict[str, Any]) -> list[str]:
    said = {s: row[f"{s}_reward"] for s in SOURCES}
    passed = {s: None if v is None else is_success(v) for s, v in said.items()}
    flags = []
    if passed["tau2"] is not None and passed["recorded"] is not None and passed["tau2"] != passed["recorded"]:
        flags.append(f"τ²'s evaluators now give {said['tau2']}, the file recorded {said['recorded']}")
    if passed["ours"] is not None and passed["tau2"] is not None and passed["ours"] != passed["tau2"]:
        flags.append(f"our verdict gives {said['ours']}, τ²'s evaluators {said['tau2']}")
    for source in ("tau2", "ours"):
        if said[source] is None:
            flags.append(f"no {'τ²' if source == 'tau2' else 'our'} verdict")
    return flags


def score_results(loaded: LoadedResults) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per simulation (recorded, τ²'s and our reward side by side, with flags) and the file's
    summary: pass^k per source with intervals, per-task successes, disagreements."""
    from datagen.envs.tau2 import load_tau2_domain

    results, path = loaded.results, loaded.path
    name = results.info.environment_info.domain_name
    try:
        domain = load_tau2_domain(name)
    except ValueError:
        raise UnreadableResults(
            f"{path}: expected a τ² domain this toolkit scores (airline, retail, telecom), found {name!r}"
        ) from None
    tasks = {t.id: t for t in results.tasks}
    changed = sorted(t for t in tasks if _task_changed(domain, tasks[t]))
    problems = list(loaded.problems)
    rows: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    for sim, termination in zip(results.simulations, loaded.terminations, strict=True):
        task = tasks.get(sim.task_id)
        if task is None:
            problems.append(
                f"{path}: simulation {sim.id} names task {sim.task_id!r}, which the file lacks; skipped"
            )
            continue
        verdicts = _verdicts(domain, task, sim.messages, termination)
        row = {
            "file": str(path),
            "simulation_id": sim.id,
            "task_id": sim.task_id,
            "trial": sim.trial if sim.trial is not None else seen[sim.task_id],
            "termination": termination,
            "recorded_reward": sim.reward_info.reward if sim.reward_info is not None else None,
            "tau2_reward": verdicts.tau2,
            "ours_reward": verdicts.ours,
            "tau2_parts": verdicts.tau2_parts,
            "our_parts": verdicts.our_parts,
            "notes": verdicts.notes
            + (["the file's task differs from the installed τ² data"] if sim.task_id in changed else []),
        }
        seen[sim.task_id] += 1
        row["disagreements"] = _disagreements(row)
        rows.append(row)
    return rows, file_summary(loaded, rows, problems, changed)


def file_summary(
    loaded: LoadedResults, rows: list[dict[str, Any]], problems: list[str], changed: list[str]
) -> dict[str, Any]:
    info = loaded.results.info
    outcomes: dict[str, dict[str, list[bool]]] = {s: defaultdict(list) for s in SOURCES}
    for row in sorted(rows, key=lambda r: (r["task_id"], r["trial"])):
        for source in SOURCES:
            reward = row[f"{source}_reward"]
            outcomes[source][row["task_id"]].append(reward is not None and is_success(reward))
    return {
        "file": str(loaded.path),
        "domain": info.environment_info.domain_name,
        "agent": info.agent_info.llm or info.agent_info.implementation,
        "user": info.user_info.llm or info.user_info.implementation,
        "num_trials": info.num_trials,
        "simulations": len(rows),
        "tasks": len(outcomes["recorded"]),
        "pass_k": {source: intervals_json(pass_k_table(outcomes[source])) for source in SOURCES},
        "per_task": {
            task_id: {"trials": len(outcomes["recorded"][task_id])}
            | {source: sum(outcomes[source][task_id]) for source in SOURCES}
            for task_id in sorted(outcomes["recorded"])
        },
        "disagreements": sum(1 for r in rows if r["disagreements"]),
        "terminations": dict(Counter(r["termination"] for r in rows)),
        "tasks_differing_from_installed": changed,
        "problems": problems,
    }
