"""What every served protocol shares: where an episode starts, and one environment per client session.

A client starts a session from the domain's evaluation seed, from a seed it names, or from a task it
names (a gold or example task: the task's own seed, and for τ² domains its initial state). The
server keeps one environment per session and drops the least recently used ones past a cap, so a
client that never says goodbye cannot exhaust the server.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from datagen.envs.base import Domain, Environment, Task
from datagen.envs.store import Tables

MAX_SESSIONS = 1024  # environments kept at once; the least recently used goes first


class StartError(ValueError):
    """A start state the domain cannot give (an unknown task, a malformed seed); one line for people."""


@dataclass(frozen=True)
class StartState:
    """Where an episode starts: ``task_id`` wins over ``seed``; neither means the evaluation seed."""

    seed: int | None = None
    task_id: str | None = None

    @classmethod
    def parse(cls, seed: Any = None, task_id: Any = None) -> StartState:
        """From untyped input (a URL query, a reset request); a malformed seed is a StartError."""
        if seed is not None and not isinstance(seed, int):
            try:
                seed = int(str(seed))
            except ValueError:
                raise StartError(f"expected an integer seed, found {seed!r}") from None
        if task_id is not None and (not isinstance(task_id, str) or not task_id):
            raise StartError(f"expected a task id (a non-empty string), found {task_id!r}")
        return cls(seed=seed, task_id=task_id)


def find_task(domain: Domain, task_id: str) -> Task:
    """The gold or example task ``task_id`` of ``domain``; a StartError naming a few ids otherwise."""
    for task in (*domain.gold_tasks, *domain.example_tasks):
        if task.id == task_id:
            return task
    known = [t.id for t in domain.gold_tasks][:5]
    raise StartError(
        f"domain {domain.name!r} has no task {task_id!r}; gold tasks include {known} "
        "(`apigen-mt envs show NAME` lists the counts)"
    )


def start_env(domain: Domain, start: StartState) -> Environment:
    """A fresh environment in the state ``start`` names."""
    if start.task_id is not None:
        return domain.env_for_task(find_task(domain, start.task_id))
    return domain.new_env(start.seed)


@dataclass
class Session:
    """One client's environment and the state it started from (policy checks judge against it)."""

    env: Environment
    start: StartState
    before: Tables
    last_used: float = field(default_factory=time.monotonic)

    def violations(self) -> list[dict[str, str]]:
        return violation_records(self.env, self.before)


def domain_info(domain: Domain) -> dict[str, Any]:
    """What a remote client needs to run Phase 1, Phase 2 and evaluations on a served domain as it
    would in-process: its seeds (sessions start from any seed or task), how its records name each
    other, what each tool's output can feed, the literals its provenance check allows, its gold and
    example tasks."""
    refs = domain.references
    return {
        "name": domain.name,
        "train_seed": domain.train_seed,
        "eval_seed": domain.eval_seed,
        "references": None
        if refs is None
        else {
            "user_table": refs.user_table,
            "tables": dict(refs.tables),
            "maps": dict(refs.maps),
            "names": dict(refs.names),
            "free_text": sorted(refs.free_text),
        },
        "provenance": {
            "computed": {tool: sorted(paths) for tool, paths in domain.provenance.computed.items()},
            "small_integers": domain.provenance.small_integers,
        },
        # which output fields of each tool can feed other tools' parameters (Phase 1's API-graph walk)
        "produces": {t.name: sorted(t.produces) for t in domain.tools},
        "gold_tasks": [t.model_dump(mode="json") for t in domain.gold_tasks],
        "example_tasks": [t.model_dump(mode="json") for t in domain.example_tasks],
    }


def violation_records(env: Environment, before: Tables) -> list[dict[str, str]]:
    """The policy checks ``env``'s calls broke since ``before``, as plain records for the wire."""
    return [{"check": v.check, "rule": v.rule, "message": v.message} for v in env.policy_violations(before)]


class Sessions:
    """Environments by session key; ``get`` creates one from the session's start state on first use."""

    def __init__(self, domain: Domain, default: StartState, max_sessions: int = MAX_SESSIONS):
        self.domain = domain
        self.default = default
        self.max_sessions = max_sessions
        self._open: OrderedDict[str, Session] = OrderedDict()

    def get(self, key: str, start: StartState | None = None) -> Session:
        found = self._open.get(key)
        if found is None:
            begin = (
                start if start is not None and (start.seed, start.task_id) != (None, None) else self.default
            )
            env = start_env(self.domain, begin)
            found = self._open[key] = Session(env, begin, env.snapshot())
            while len(self._open) > self.max_sessions:
                _, dropped = self._open.popitem(last=False)
                dropped.env.close()
        else:
            self._open.move_to_end(key)
        found.last_used = time.monotonic()
        return found

    def drop(self, key: str) -> None:
        found = self._open.pop(key, None)
        if found is not None:
            found.env.close()

    def __len__(self) -> int:
        return len(self._open)
