"""The τ-bench-style harness: every trial of every task in flight at once over Phase 2's episode loop.

Results are append-only (one JSON line per trial, with the full trajectory and the reward's parts),
so a killed evaluation resumes where it stopped.

Reward: on native domains, the final state matches the gold replay's, the expected outputs were said
and no policy check fails (``judge_episode``). On τ² domains the reward is τ²'s own rule-based
evaluators on the trajectory (``datagen.envs.tau2.evaluate.tau2_reward``: DB / env assertions, gold
actions, communicated info, over the task's reward basis), so the numbers compare with τ²'s; the
verdict's checks are kept in the row next to it. NL assertions need an LLM judge and are not scored:
rows name them in ``tau2_reward.skipped``. Where τ² gives the user tools (telecom's phone), the
simulated user gets them too and its calls run on the user's side of the episode.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from datagen.envs.base import Domain, Environment, Task
from datagen.envs.tau2.domain import Tau2Domain
from datagen.joberrors import error_outcome
from datagen.llm.pool import ModelPool
from datagen.llm.types import ChatModel
from datagen.runio import JsonlAppender, read_jsonl, write_json_atomic
from datagen.simulate.agent import Agent
from datagen.simulate.episode import final_messages, run_episode
from datagen.simulate.user import SimulatedUser
from datagen.simulate.verdict import judge_episode
from evaluation.tau.config import TauConfig
from evaluation.tau.passk import pass_k_curve
from evaluation.tau.user_check import conversation_sides, unsupported_user_facts

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
PER_TASK = "per_task.json"


class TrialRecord(BaseModel):
    """The fields of a results.jsonl line that resume and the summary read; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    trial: int
    success: bool
    reward: float
    failure: str | None = None
    gold_noop: bool = False


@dataclass(frozen=True)
class GoldInfo:
    start_hash: str
    end_hash: str
    end_state: dict[str, Any]
    replay_ok: bool

    @property
    def noop(self) -> bool:
        """The correct end state is the start state: a do-nothing agent passes the state check."""
        return self.start_hash == self.end_hash


def gold_info(domain: Domain, task: Task) -> GoldInfo:
    env = domain.env_for_task(task)
    start = env.state_hash()
    if isinstance(domain, Tau2Domain):  # τ²'s gold includes the user's own tool calls (telecom)
        from datagen.envs.tau2.evaluate import gold_actions, replay_actions

        observations = replay_actions(env, gold_actions(domain, task.id))
    else:
        observations = env.replay(task.actions)
    return GoldInfo(start, env.state_hash(), env.snapshot(), all(o.ok for o in observations))


def tau2_score(
    domain: Tau2Domain, task: Task, env: Environment, assistant_texts: list[str]
) -> dict[str, Any]:
    """τ²'s own evaluators on this trial's trajectory (see the module docstring)."""
    from datagen.envs.tau2.evaluate import tau2_messages, tau2_reward

    report = tau2_reward(
        domain,
        task.id,
        tau2_messages(env, [t for t in assistant_texts if t]),
        domain.tau2_environment_constructor,
    )
    return {
        "reward": report.reward,
        "parts": report.parts,
        "details": report.details,
        "skipped": report.skipped,
    }


class TauHarness:
    def __init__(
        self, config: TauConfig, domain: Domain, tasks: list[Task], out_dir: Path, pool: ModelPool | Any
    ):
        self.config = config
        self.domain = domain
        self.tasks = tasks
        self.out_dir = out_dir
        self.pool = pool
        self._gold = {t.id: gold_info(domain, t) for t in tasks}
        broken = [t.id for t in tasks if not self._gold[t.id].replay_ok]
        if broken and domain.authored_gold:
            raise ValueError(
                f"gold actions of tasks {broken} do not replay cleanly on {domain.name}; fix the tasks first"
            )

    @property
    def agent_model(self) -> ChatModel:
        return self.pool.get(self.config.agent.model)

    @property
    def user_model(self) -> ChatModel:
        return self.pool.get(self.config.user.model)

    async def run(self, on_trial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        # A line that is not a trial record is reported and skipped; its trial runs again.
        rows, problems = read_jsonl(self.out_dir / RESULTS, TrialRecord)
        for problem in problems:
            log.warning("resume: %s", problem)
        done = {(r["task_id"], r["trial"]) for r in rows}
        semaphore = asyncio.Semaphore(self.config.concurrency)
        with JsonlAppender(self.out_dir / RESULTS) as out:

            async def one(task: Task, trial: int) -> None:
                async with semaphore:
                    row = await self.run_trial(task, trial)
                try:
                    out.write(row)
                except Exception as exc:  # a row that cannot be written becomes an error row that can
                    row = self._error_row(task, trial, exc)
                    out.write(row)
                if on_trial:
                    on_trial(row)

            await asyncio.gather(
                *(one(t, i) for t in self.tasks for i in range(self.config.trials) if (t.id, i) not in done)
            )
        rows = read_jsonl(self.out_dir / RESULTS, TrialRecord)[0]
        task_ids = {t.id for t in self.tasks}
        write_json_atomic(self.out_dir / PER_TASK, per_task(rows, task_ids))
        summary = summarize(rows, self.config.trials, task_ids)
        summary.update(env=self.domain.name, agent=self.agent_model.name, user=self.user_model.name)
        write_json_atomic(self.out_dir / SUMMARY, summary)
        return summary

    async def run_trial(self, task: Task, trial: int) -> dict[str, Any]:
        """One trial's row; an exception in any of its steps (building, the episode, the verdict,
        τ²'s scoring, the row) becomes an error row that keeps the dialogue as far as it got."""
        messages: list[dict[str, Any]] = []
        try:
            return await self._run_trial(task, trial, messages)
        except Exception as exc:
            return self._error_row(task, trial, exc, messages)

    def _error_row(
        self, task: Task, trial: int, exc: Exception, messages: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        gold = self._gold.get(task.id)
        return {
            "task_id": task.id,
            "trial": trial,
            **error_outcome(exc, f"τ trial {trial} of {task.id}"),
            "gold_noop": gold.noop if gold is not None else False,
            "messages": messages or [],
        }

    async def _run_trial(self, task: Task, trial: int, messages: list[dict[str, Any]]) -> dict[str, Any]:
        cfg = self.config
        gold = self._gold[task.id]
        env = self.domain.env_for_task(task)
        seed = cfg.seed * 1000 + trial
        agent = Agent(
            self.agent_model,
            policy=self.domain.policy,
            tools=self.domain.tool_schemas(),
            temperature=cfg.agent.temperature,
            max_tokens=cfg.agent.max_tokens,
            seed=seed,
        )
        device = self.domain.user_tools if isinstance(self.domain, Tau2Domain) else []
        user = SimulatedUser(
            self.user_model,
            instruction=task.instruction,
            persona=task.persona,
            best_of_n=cfg.user.best_of_n,
            temperature=cfg.user.temperature,
            max_tokens=cfg.user.max_tokens,
            seed=seed,
            device_tools=[t.schema for t in device] or None,
            use_device=env.call_user if device else None,
        )
        episode = await run_episode(env, agent, user, max_steps=cfg.max_steps)
        messages.extend(final_messages(agent.system, episode))  # kept by an error row if a later step fails
        verdict = judge_episode(env, episode, expected_hash=gold.end_hash, expected_outputs=task.outputs)
        users, agents = conversation_sides(episode.messages)
        invented = unsupported_user_facts(users, task.instruction, task.persona, agents)
        reward, success, failure = verdict.reward, verdict.success, verdict.failure
        official = tau2_score(self.domain, task, env, agents) if isinstance(self.domain, Tau2Domain) else None
        if official is not None:
            reward, success = official["reward"], official["reward"] == 1.0
            failing = [part for part, value in official["parts"].items() if value < 1.0]
            failure = None if success else failure or f"tau2_{failing[0] if failing else 'reward'}"
        if failure is not None and invented:
            failure = "user_error"  # the simulator's mistake, not the agent's
        return {
            "task_id": task.id,
            "trial": trial,
            "reward": reward,
            "success": success,
            "failure": failure,
            "tau2_reward": official,
            "reward_parts": {
                "state_match": verdict.checks["state_match"],
                "outputs": f"{verdict.checks['outputs_found']}/{verdict.checks['outputs_expected']}",
                "policy_ok": not verdict.checks["policy_violations"],
            },
            "checks": verdict.checks,
            "user_unsupported_facts": invented,
            "gold_noop": gold.noop,
            "state_diff_vs_gold": []
            if verdict.checks["state_match"]
            else env.diff(gold.end_state, env.snapshot()),
            "messages": final_messages(agent.system, episode),
            "user_device_calls": [call for turn in episode.user_turns for call in turn.device_calls],
            "usage": {
                "prompt_tokens": episode.usage.prompt_tokens,
                "completion_tokens": episode.usage.completion_tokens,
            },
        }


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


def summarize(rows: list[dict[str, Any]], trials: int, task_ids: set[str]) -> dict[str, Any]:
    """pass^k with and without the tasks whose gold end state is the start state; failure classes."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    noop: set[str] = set()
    user_errors: set[str] = set()
    for row in sorted(rows, key=lambda r: (r["task_id"], r["trial"])):
        if row["task_id"] in task_ids:
            by_task[row["task_id"]].append(bool(row["success"]))
            if row.get("gold_noop"):
                noop.add(row["task_id"])
            if row.get("failure") == "user_error":
                user_errors.add(row["task_id"])
    complete = {t: v for t, v in by_task.items() if len(v) == trials}
    changing = {t: v for t, v in complete.items() if t not in noop}
    # A trial the simulated user spoiled says nothing about the agent: this curve leaves such tasks out.
    user_clean = {t: v for t, v in complete.items() if t not in user_errors}
    failures = Counter(r["failure"] for r in rows if r["task_id"] in task_ids and not r["success"])
    return {
        "tasks": len(complete),
        "incomplete_tasks": sorted(set(by_task) - set(complete)),
        "trials": trials,
        "pass_k": {str(k): v for k, v in pass_k_curve(complete).items()},
        "pass_k_state_changing_only": {str(k): v for k, v in pass_k_curve(changing).items()},
        "pass_k_without_user_error_tasks": {str(k): v for k, v in pass_k_curve(user_clean).items()},
        "user_error_tasks": sorted(user_errors & set(complete)),
        "noop_gold_tasks": sorted(noop & set(complete)),
        "failure_classes": dict(failures),
        "per_task_successes": {t: sum(v) for t, v in sorted(complete.items())},
    }
