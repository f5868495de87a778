"""Phase 2 over many blueprints: every attempt of every blueprint in flight at once (bounded by the
configured concurrency) so the engine batches; append-only results; resume without repeats."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from datagen.envs.base import Domain
from datagen.joberrors import error_outcome
from datagen.llm.pool import ModelPool
from datagen.records import Blueprint, Trajectory
from datagen.runio import JsonlAppender, read_jsonl, read_models, write_json_atomic
from datagen.simulate.agent import Agent
from datagen.simulate.config import SimulateConfig
from datagen.simulate.episode import EpisodeResult, final_messages, run_episode
from datagen.simulate.user import SimulatedUser
from datagen.simulate.verdict import gold_hash, judge_episode

log = logging.getLogger(__name__)

TRAJECTORIES = "trajectories.jsonl"
FAILURES = "failures.jsonl"
DUPLICATES = "duplicates.jsonl"
STATS = "simulate_stats.json"


class DuplicateRecord(BaseModel):
    """A line of duplicates.jsonl: a success whose dialogue an earlier success of its blueprint had."""

    blueprint_id: str
    attempt: int
    duplicate_of: str


def stable_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "big")


def dialogue_signature(blueprint_id: str, messages: list[dict[str, Any]]) -> str:
    """Identity of a dialogue's content, to keep only the distinct successes of each blueprint."""
    core: list[Any] = [blueprint_id] + [
        (m["role"], (m.get("content") or "").strip(), json.dumps(m.get("tool_calls"), sort_keys=True))
        for m in messages
    ]
    return hashlib.sha256(json.dumps(core).encode()).hexdigest()


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


def phase2_funnel(run_dir: Path) -> dict[str, Any]:
    """Phase 2 counts over everything in the run directory (all sessions of a resumed run)."""
    ok, _ = read_jsonl(run_dir / TRAJECTORIES, Trajectory)
    failed, _ = read_jsonl(run_dir / FAILURES, Trajectory)
    dups, _ = read_jsonl(run_dir / DUPLICATES, DuplicateRecord)
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


class SimulationRunner:
    def __init__(
        self,
        config: SimulateConfig,
        run_dir: Path,
        domains: Callable[[str], Domain],
        pool: ModelPool,
        on_progress: Callable[[Phase2Stats], None] | None = None,
    ):
        self.config = config
        self.run_dir = run_dir
        self.domains = domains
        self.pool = pool
        self.on_progress = on_progress
        self.stats = Phase2Stats()
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._gold: dict[str, tuple[str, str, bool]] = {}
        self._done, self._signatures, self._succeeded = self._load_previous()

    def _load_previous(self) -> tuple[set[tuple[str, int]], set[str], set[str]]:
        done: set[tuple[str, int]] = set()
        signatures: set[str] = set()
        succeeded: set[str] = set()
        for name in (TRAJECTORIES, FAILURES, DUPLICATES):
            # A line that is not a valid record of its file is reported and skipped: its attempt runs again.
            rows, problems = read_models(
                self.run_dir / name, DuplicateRecord if name == DUPLICATES else Trajectory
            )
            for problem in problems:
                log.warning("resume: %s", problem)
            for row in rows:
                done.add((row.blueprint_id, row.attempt))
                if isinstance(row, Trajectory) and name == TRAJECTORIES:
                    signatures.add(dialogue_signature(row.blueprint_id, row.messages))
                    succeeded.add(row.blueprint_id)
        return done, signatures, succeeded

    async def run(self, blueprints: Iterable[Blueprint] | AsyncIterator[Blueprint]) -> dict[str, Any]:
        with (
            JsonlAppender(self.run_dir / TRAJECTORIES) as ok_out,
            JsonlAppender(self.run_dir / FAILURES) as fail_out,
            JsonlAppender(self.run_dir / DUPLICATES) as dup_out,
        ):
            self._outputs = (ok_out, fail_out, dup_out)
            tasks: list[asyncio.Task[None]] = []
            async for blueprint in _aiter(blueprints):
                self.stats.blueprints += 1
                for attempt in range(self.config.attempts):
                    if (blueprint.id, attempt) not in self._done:
                        tasks.append(asyncio.create_task(self._attempt(blueprint, attempt)))
            await asyncio.gather(*tasks)
        self.stats.blueprints_with_success = len(self._succeeded)
        summary = {**phase2_funnel(self.run_dir), "this_session": self.stats.as_dict()}
        write_json_atomic(self.run_dir / STATS, summary)
        return summary

    def _expected(self, domain: Domain, blueprint: Blueprint) -> tuple[str, str, bool]:
        found = self._gold.get(blueprint.id)
        if found is None:
            found = self._gold[blueprint.id] = gold_hash(domain, blueprint.seed, blueprint.actions)
        return found

    async def _attempt(self, blueprint: Blueprint, attempt: int) -> None:
        async with self._semaphore:
            trajectory = await self.simulate(blueprint, attempt)
        try:
            self._record(trajectory)
        except Exception as exc:  # a row that cannot be written becomes an error row that can
            self._record(self._error_trajectory(blueprint, attempt, exc, _Progress()))

    async def simulate(self, blueprint: Blueprint, attempt: int) -> Trajectory:
        """One attempt; any exception in any of its steps (building, the episode, the verdict, the
        row) becomes an error trajectory that keeps the dialogue as far as it got."""
        progress = _Progress()
        try:
            return await self._simulate(blueprint, attempt, progress)
        except Exception as exc:
            return self._error_trajectory(blueprint, attempt, exc, progress)

    def _error_trajectory(
        self, blueprint: Blueprint, attempt: int, exc: Exception, progress: _Progress
    ) -> Trajectory:
        episode = progress.episode
        return Trajectory(
            **_identity(blueprint, attempt),
            messages=final_messages(progress.system, episode) if episode is not None else [],
            tools=progress.tools,
            agent_mode=self.config.agent.mode,
            usage={
                "prompt_tokens": episode.usage.prompt_tokens if episode else 0,
                "completion_tokens": episode.usage.completion_tokens if episode else 0,
            },
            **error_outcome(exc, f"phase 2 attempt {attempt} of {blueprint.id}"),
        )

    async def _simulate(self, blueprint: Blueprint, attempt: int, progress: _Progress) -> Trajectory:
        cfg = self.config
        domain = self.domains(blueprint.env)
        expected_hash, _, _ = self._expected(domain, blueprint)
        env = domain.new_env(blueprint.seed)
        seed = stable_seed(cfg.seed, blueprint.id, attempt)
        gold_actions = [a.model_dump() for a in blueprint.actions]
        agent = Agent(
            self.pool.get(cfg.agent.model),
            policy=domain.policy,
            tools=domain.tool_schemas(),
            mode=cfg.agent.mode,
            gold_actions=gold_actions if cfg.agent.mode == "replay" else None,
            stop_after_script=cfg.agent.stop_after_script,
            temperature=cfg.agent.temperature,
            max_tokens=cfg.agent.max_tokens,
            seed=seed,
        )
        user = SimulatedUser(
            self.pool.get(cfg.user.model),
            instruction=blueprint.instruction,
            persona=blueprint.persona,
            best_of_n=cfg.user.best_of_n,
            judge=self.pool.get(cfg.user.judge) if cfg.user.judge else None,
            temperature=cfg.user.temperature,
            max_tokens=cfg.user.max_tokens,
            judge_max_tokens=cfg.user.judge_max_tokens,
            seed=seed,
        )
        progress.system, progress.tools = agent.system, agent.tools
        episode = progress.episode = await run_episode(env, agent, user, max_steps=cfg.max_steps)
        verdict = judge_episode(env, episode, expected_hash=expected_hash, expected_outputs=blueprint.outputs)
        return Trajectory(
            **_identity(blueprint, attempt),
            messages=final_messages(agent.system, episode),
            tools=domain.tool_schemas(),
            success=verdict.success,
            reward=verdict.reward,
            failure=verdict.failure,  # type: ignore[arg-type]
            checks={**verdict.checks, "user_scores": [t.scores for t in episode.user_turns]},
            models={
                "agent": self.pool.get(cfg.agent.model).name,
                "user": self.pool.get(cfg.user.model).name,
                **({"judge": self.pool.get(cfg.user.judge).name} if cfg.user.judge else {}),
            },
            agent_mode=cfg.agent.mode,
            usage={
                "prompt_tokens": episode.usage.prompt_tokens,
                "completion_tokens": episode.usage.completion_tokens,
            },
        )

    def _record(self, trajectory: Trajectory) -> None:
        ok_out, fail_out, dup_out = self._outputs
        row = trajectory.model_dump(mode="json")
        if not trajectory.success:
            fail_out.write(row)
            self.stats.failures[trajectory.failure or "error"] += 1
        else:
            signature = dialogue_signature(trajectory.blueprint_id, trajectory.messages)
            if signature in self._signatures:
                dup_out.write(
                    DuplicateRecord(
                        blueprint_id=trajectory.blueprint_id,
                        attempt=trajectory.attempt,
                        duplicate_of=signature,
                    ).model_dump()
                )
                self.stats.duplicates += 1
            else:
                ok_out.write(row)
                self._signatures.add(signature)
                self._succeeded.add(trajectory.blueprint_id)
                self.stats.successes += 1
        self.stats.attempts += 1
        self.stats.prompt_tokens += trajectory.usage.get("prompt_tokens", 0)
        self.stats.completion_tokens += trajectory.usage.get("completion_tokens", 0)
        if self.on_progress:
            self.on_progress(self.stats)


def _identity(blueprint: Blueprint, attempt: int) -> dict[str, Any]:
    """The fields of a trajectory that name its attempt, whatever became of it."""
    return {
        "id": f"{blueprint.id}-a{attempt}",
        "blueprint_id": blueprint.id,
        "env": blueprint.env,
        "seed": blueprint.seed,
        "attempt": attempt,
        "persona": blueprint.persona,
        "instruction": blueprint.instruction,
    }


@dataclass
class _Progress:
    """How far one attempt got, so an error row keeps the dialogue it has."""

    system: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    episode: EpisodeResult | None = None


async def _aiter(items: Iterable[Blueprint] | AsyncIterator[Blueprint]) -> AsyncIterator[Blueprint]:
    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[union-attr]
            yield item
    else:
        for item in items:  # type: ignore[union-attr]
            yield item
