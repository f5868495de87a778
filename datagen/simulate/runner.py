"""Phase 2 over many blueprints: every attempt of every blueprint is one job of the batch layer
(:mod:`datagen.runner.batch`), built by the build layer (:mod:`datagen.simulate.build`) and judged
against its blueprint. Each finished attempt lands at once in the run directory (a success in
``trajectories``, a failure in ``failures``, a repeat of an earlier success in ``duplicates``), so a
killed run resumes without repeats and without losses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from datagen.envs.base import Domain
from datagen.joberrors import error_outcome
from datagen.llm.base import ModelUnavailableError
from datagen.recipe.episode import SimulateConfig
from datagen.records import Blueprint, Trajectory
from datagen.rundir import DatagenRun, JsonlAppender, read_records
from datagen.runner.batch import Batch, Job
from datagen.runner.executor import LOCAL, Executor
from datagen.simulate.build import Models, build_sides, play_episode, role_models
from datagen.simulate.episode import EpisodeResult, final_messages
from datagen.simulate.verdict import gold_hash, judge_episode

log = logging.getLogger(__name__)


def dialogue_signature(blueprint_id: str, messages: list[dict[str, Any]]) -> str:
    """Identity of a dialogue's content, to keep only the distinct successes of each blueprint."""
    core: list[Any] = [blueprint_id] + [
        (m["role"], (m.get("content") or "").strip(), json.dumps(m.get("tool_calls"), sort_keys=True))
        for m in messages
    ]
    return hashlib.sha256(json.dumps(core).encode()).hexdigest()


class DuplicateRecord(BaseModel):
    """A line of the duplicates file: a success whose dialogue an earlier success of its blueprint had."""

    blueprint_id: str
    attempt: int
    duplicate_of: str


def attempt_key(blueprint_id: str, attempt: int) -> str:
    return f"{blueprint_id}#a{attempt}"


@dataclass
class Phase2Stats:
    blueprints: int = 0
    attempts: int = 0
    successes: int = 0
    duplicates: int = 0
    blueprints_with_success: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "blueprints": self.blueprints,
            "attempts": self.attempts,
            "successful_trajectories": self.successes,
            "duplicate_successes": self.duplicates,
            "blueprints_with_success": self.blueprints_with_success,
            "success_rate": self.successes / self.attempts if self.attempts else 0.0,
            "failures": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "generated_tokens_per_s": self.completion_tokens / elapsed,
            "elapsed_s": elapsed,
        }


def phase2_funnel(run: DatagenRun) -> dict[str, Any]:
    """Phase 2 counts over everything in the run directory (all sessions of a resumed run)."""
    ok = [t.model_dump(mode="json") for t in read_records(run.trajectories, Trajectory)]
    failed = [t.model_dump(mode="json") for t in read_records(run.failures, Trajectory)]
    dups = [d.model_dump() for d in read_records(run.duplicates, DuplicateRecord)]
    attempts = len(ok) + len(failed) + len(dups)
    rows = ok + failed
    return {
        "attempts": attempts,
        "successful_trajectories": len(ok),
        "duplicate_successes": len(dups),
        "failed_trajectories": len(failed),
        "blueprints_attempted": len({r["blueprint_id"] for r in rows} | {r["blueprint_id"] for r in dups}),
        "blueprints_with_success": len({r["blueprint_id"] for r in ok}),
        "success_rate": (len(ok) + len(dups)) / attempts if attempts else 0.0,
        "failures": dict(Counter(r.get("failure") or "error" for r in failed)),
        "prompt_tokens": sum(r.get("usage", {}).get("prompt_tokens", 0) for r in rows),
        "completion_tokens": sum(r.get("usage", {}).get("completion_tokens", 0) for r in rows),
    }


@dataclass(frozen=True)
class AttemptWork:
    """Phase 2's attempts as plain data, for an executor whose workers play them with their own models
    (domains by name from the registry); the rows are still written by the runner that submitted them."""

    config: SimulateConfig

    def bind(self, models: Models) -> Callable[[tuple[Blueprint, int]], Any]:
        from datagen.envs.registry import get_domain

        return SimulationRunner(self.config, None, get_domain, models).run_attempt


class SimulationRunner:
    """Phase 2 jobs (one per blueprint attempt), their rows, and the batch that runs them."""

    def __init__(
        self,
        config: SimulateConfig,
        run: DatagenRun | None,
        domains: Callable[[str], Domain],
        models: Models,
        on_progress: Callable[[Phase2Stats], None] | None = None,
        executor: Executor = LOCAL,
        concurrency: int | None = None,
    ):
        """``run`` is None where the runner only plays attempts for another process that records
        them (a Ray worker: :class:`AttemptWork`). ``concurrency``: dialogues in flight, when the caller
        has planned it below the recipe's ceiling (``datagen.pipeline_shape``)."""
        self.config = config
        self.run_dir = run
        self.domains = domains
        self.models = models
        self.on_progress = on_progress
        self.executor = executor
        self.concurrency = concurrency or config.concurrency
        self.stats = Phase2Stats()
        self._gold: dict[str, str] = {}
        self._done, self._signatures, self._succeeded = (
            self._load_previous() if run else (set(), set(), set())
        )
        self._outputs: tuple[JsonlAppender, JsonlAppender, JsonlAppender] | None = None
        self._batch: Batch[tuple[Blueprint, int], Trajectory] | None = None
        self.summary: dict[str, Any] = {}

    def backlog(self) -> int:
        """Attempts submitted in this session that wait for a free dialogue slot."""
        return self._batch.counts.queued if self._batch is not None else 0

    def _load_previous(self) -> tuple[set[str], set[str], set[str]]:
        """What earlier sessions finished; a line that is not a valid record of its file is reported
        and skipped, so its attempt runs again."""
        done: set[str] = set()
        signatures: set[str] = set()
        succeeded: set[str] = set()
        for trajectory in read_records(self.run_dir.trajectories, Trajectory):
            done.add(attempt_key(trajectory.blueprint_id, trajectory.attempt))
            signatures.add(dialogue_signature(trajectory.blueprint_id, trajectory.messages))
            succeeded.add(trajectory.blueprint_id)
        for trajectory in read_records(self.run_dir.failures, Trajectory):
            done.add(attempt_key(trajectory.blueprint_id, trajectory.attempt))
        for duplicate in read_records(self.run_dir.duplicates, DuplicateRecord):
            done.add(attempt_key(duplicate.blueprint_id, duplicate.attempt))
        return done, signatures, succeeded

    def jobs(self, blueprint: Blueprint) -> list[Job[tuple[Blueprint, int]]]:
        return [Job(attempt_key(blueprint.id, a), (blueprint, a)) for a in range(self.config.attempts)]

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Callable[[Blueprint], None]]:
        """Opens the run's Phase 2 files and its batch; yields ``submit(blueprint)``, which queues
        the blueprint's attempts while others run. Leaving the block waits for every attempt (or,
        on an exception, cancels them) before the files close, then writes the funnel."""
        try:
            with (
                JsonlAppender(self.run_dir.trajectories) as ok_out,
                JsonlAppender(self.run_dir.failures) as fail_out,
                JsonlAppender(self.run_dir.duplicates) as dup_out,
            ):
                self._outputs = (ok_out, fail_out, dup_out)
                runner = self.executor.runner(AttemptWork(self.config), local=lambda: self.run_attempt)
                batch = Batch(
                    runner.run,
                    concurrency=self.executor.in_flight(self.concurrency),
                    record=self._record,
                    record_error=self._record_error,
                    done=self._done,
                    stop_on=(ModelUnavailableError,),
                    name="phase 2",
                )
                self._batch = batch
                async with batch:

                    def submit(blueprint: Blueprint) -> None:
                        self.stats.blueprints += 1
                        batch.submit_all(self.jobs(blueprint))

                    yield submit
        finally:
            self._outputs, self._batch = None, None
            self.stats.blueprints_with_success = len(self._succeeded)
            self.summary = {**phase2_funnel(self.run_dir), "this_session": self.stats.as_dict()}
            self.run_dir.write_phase2_stats(self.summary)

    async def run(self, blueprints: Iterable[Blueprint] | AsyncIterator[Blueprint]) -> dict[str, Any]:
        """Every attempt of every blueprint; returns the Phase 2 funnel."""
        async with self.session() as submit:
            async for blueprint in _aiter(blueprints):
                submit(blueprint)
        return self.summary

    def _expected_hash(self, domain: Domain, blueprint: Blueprint) -> str:
        found = self._gold.get(blueprint.id)
        if found is None:
            found = self._gold[blueprint.id] = gold_hash(domain, blueprint.seed, blueprint.actions)[0]
        return found

    async def run_attempt(self, payload: tuple[Blueprint, int]) -> Trajectory:
        blueprint, attempt = payload
        return await self.simulate(blueprint, attempt)

    async def simulate(self, blueprint: Blueprint, attempt: int) -> Trajectory:
        """One attempt: build both sides, play the dialogue, judge it against the blueprint. An
        exception in any step becomes an error trajectory that keeps the dialogue as far as it got;
        an unreachable model is not the attempt's failure and stops the run instead."""
        progress = _Progress()
        try:
            return await self._simulate(blueprint, attempt, progress)
        except ModelUnavailableError:
            raise
        except Exception as exc:
            return self._error_trajectory(blueprint, attempt, exc, progress)

    async def _simulate(self, blueprint: Blueprint, attempt: int, progress: _Progress) -> Trajectory:
        cfg = self.config
        domain = self.domains(blueprint.env)
        expected_hash = self._expected_hash(domain, blueprint)
        env = domain.new_env(blueprint.seed)
        sides = build_sides(
            cfg,
            self.models,
            domain,
            env,
            item_id=blueprint.id,
            attempt=attempt,
            instruction=blueprint.instruction,
            persona=blueprint.persona,
            gold_actions=[a.model_dump() for a in blueprint.actions],
            outputs=blueprint.outputs,
        )
        progress.system, progress.tools = sides.agent.system, sides.agent.tools
        episode = progress.episode = await play_episode(cfg, sides, env)
        verdict = judge_episode(
            env, episode, expected_hash=expected_hash, expected_outputs=blueprint.outputs, provenance=True
        )
        return Trajectory(
            **self._identity(blueprint, attempt),
            messages=final_messages(sides.agent.system, episode),
            tools=domain.tool_schemas(),
            success=verdict.success,
            reward=verdict.reward,
            failure=verdict.failure,  # type: ignore[arg-type]
            checks={**verdict.checks, "user_scores": [t.scores for t in episode.user_turns]},
            models=role_models(cfg, self.models),
            agent_mode=cfg.agent.mode,
            user_mode=cfg.user.mode,
            usage=_usage(episode),
        )

    def _error_trajectory(
        self, blueprint: Blueprint, attempt: int, exc: BaseException, progress: _Progress | None = None
    ) -> Trajectory:
        episode = progress.episode if progress else None
        return Trajectory(
            **self._identity(blueprint, attempt),
            messages=final_messages(progress.system, episode) if progress and episode else [],
            tools=progress.tools if progress else [],
            agent_mode=self.config.agent.mode,
            user_mode=self.config.user.mode,
            usage=_usage(episode),
            **error_outcome(exc, f"phase 2 attempt {attempt} of {blueprint.id}"),
        )

    def _identity(self, blueprint: Blueprint, attempt: int) -> dict[str, Any]:
        return {
            "id": f"{blueprint.id}-a{attempt}",
            "blueprint_id": blueprint.id,
            "env": blueprint.env,
            "seed": blueprint.seed,
            "attempt": attempt,
            "persona": blueprint.persona,
            "instruction": blueprint.instruction,
        }

    def _record_error(self, job: Job[tuple[Blueprint, int]], exc: BaseException) -> None:
        """An attempt that raised outside :meth:`simulate`, or whose row could not be written."""
        blueprint, attempt = job.payload
        self._record(job, self._error_trajectory(blueprint, attempt, exc))

    def _record(self, job: Job[tuple[Blueprint, int]], trajectory: Trajectory) -> None:
        """Writes the attempt's row first and counts it after, so a row that cannot be written (and
        is replaced by an error row) is counted once."""
        assert self._outputs is not None, "rows are recorded only while the session holds the files open"
        ok_out, fail_out, dup_out = self._outputs
        if not trajectory.success:
            fail_out.write(trajectory.model_dump(mode="json"))
            self.stats.failures[trajectory.failure or "error"] += 1
        else:
            signature = dialogue_signature(trajectory.blueprint_id, trajectory.messages)
            if signature in self._signatures:
                duplicate = DuplicateRecord(
                    blueprint_id=trajectory.blueprint_id, attempt=trajectory.attempt, duplicate_of=signature
                )
                dup_out.write(duplicate.model_dump())
                self.stats.duplicates += 1
            else:
                ok_out.write(trajectory.model_dump(mode="json"))
                self._signatures.add(signature)
                self._succeeded.add(trajectory.blueprint_id)
                self.stats.successes += 1
        self.stats.attempts += 1
        self.stats.prompt_tokens += trajectory.usage.get("prompt_tokens", 0)
        self.stats.completion_tokens += trajectory.usage.get("completion_tokens", 0)
        if self.on_progress:
            self.on_progress(self.stats)


@dataclass
class _Progress:
    """How far one attempt got, so an error row keeps the dialogue it has."""

    system: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    episode: EpisodeResult | None = None


def _usage(episode: EpisodeResult | None) -> dict[str, int]:
    return {
        "prompt_tokens": episode.usage.prompt_tokens if episode else 0,
        "completion_tokens": episode.usage.completion_tokens if episode else 0,
    }


async def _aiter(items: Iterable[Blueprint] | AsyncIterator[Blueprint]) -> AsyncIterator[Blueprint]:
    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[union-attr]
            yield item
    else:
        for item in items:  # type: ignore[union-attr]
            yield item
