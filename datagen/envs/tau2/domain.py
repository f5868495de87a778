"""τ²-bench domains behind our ``Domain``/``Environment`` interface.

Each episode owns a τ² ``Environment`` (its toolkit(s) and pydantic database(s)); τ²'s own tool
code runs every call. What we add around it:

- reset without touching the disk: the database is parsed once per process and each episode
  gets a copy-on-access view of it (``episode_copy``), so reset costs microseconds, not a 3 MB copy;
- a failed call changes nothing: τ² tools check before they mutate, but to guarantee it the
  episode is rebuilt from its initial state plus its successful state-changing calls whenever a
  write tool fails;
- ``snapshot()``: the database as our JSON tables (``{table: {id: record}}``); ``state_hash()`` our
  canonical hash of it, equal whenever τ²'s ``get_db_hash``/``get_user_db_hash`` are equal;
- user-side tools (telecom): ``call_user`` runs a tool of the user's device, kept out of the
  agent's trace but in ``timeline`` so a trajectory can be rebuilt in order.

τ²'s database is fixed, so every seed gives the same state: ``seed`` is only recorded. τ²'s train
and test tasks share that database (τ²'s own design); the split is by task.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from datagen.envs.base import Domain, Environment, Observation, Task
from datagen.envs.policy import ActionRecord
from datagen.envs.references import References
from datagen.envs.store import BaseState, Tables
from datagen.envs.tau2.state import db_tables, episode_copy, tables_hash
from datagen.envs.tau2.tasks import Split, convert_task
from datagen.envs.tau2.toolspecs import Requestor, Tau2ToolSpec, calculate, specs_from_toolkit
from datagen.envs.tools import ToolError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tau2Source:
    """Where a τ² domain comes from: its ``get_environment``/``get_tasks``/``get_tasks_split``."""

    name: str  # τ²'s domain name: airline, retail, telecom
    get_environment: Callable[..., Any]
    get_tasks: Callable[[str | None], list[Any]]
    get_tasks_split: Callable[[], dict[str, list[str]]]


@dataclass(frozen=True)
class TimelineEntry:
    """One call of an episode, agent's or user's, with the tool result as τ² itself renders it.

    ``tau2_content`` is None for calls τ²'s code never answered: rejected by our argument
    validation (τ² would have run them unchecked), unknown tools, or a failed ``calculate`` (ours
    replaces τ²'s eval). They changed nothing, and τ² could not reproduce their error text."""

    requestor: Requestor
    record: ActionRecord
    tau2_content: str | None


class Tau2Environment(Environment):
    """One episode on a τ² domain, optionally started from a τ² task's initial state."""

    def __init__(self, domain: Tau2Domain, seed: int, task_id: str | None = None):
        super().__init__(domain, seed)
        self._domain: Tau2Domain = domain
        self.task_id = task_id
        self._pristine = False
        self._applied = []
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self.trace = []
        self.user_trace: list[ActionRecord] = []
        self.timeline: list[TimelineEntry] = []
        if self._pristine and getattr(self, "_built_for", object()) == self.task_id:
            return  # nothing was written since the last build: the τ² state is still the initial one
        self._applied: list[tuple[Requestor, str, dict[str, Any]]] = []
        self._rebuild()

    def start_task(self, task_id: str | None) -> None:
        """Resets to the initial state of τ² task ``task_id`` (None: τ²'s plain database)."""
        if task_id is not None:
            self._domain.tau2_task(task_id)  # unknown ids fail here, loudly
        self.task_id = task_id
        self.reset()

    def _rebuild(self) -> None:
        """Initial state, then every successful state-changing call again (rollback of a failure)."""
        self.tau2 = self.tau2_copy()
        self._built_for = self.task_id
        self._pristine = not self._applied
        self._snapshot: Tables | None = None
        self._hash: str | None = None

    # -- calls -------------------------------------------------------------------------------------
    def _execute(self, spec: Tau2ToolSpec, arguments: dict[str, Any]) -> Any:  # type: ignore[override]
        self._tau2_content = None
        try:
            if spec.name == "calculate" and spec.tau2_type == "generic":
                result = calculate(**arguments)
            else:
                try:
                    result = self.tau2.make_tool_call(spec.name, requestor=spec.requestor, **arguments)
                    # τ²'s get_response syncs agent and user state after every call; so do we.
                    self.tau2.sync_tools()
                except Exception as exc:
                    self._tau2_content = f"Error: {exc}"  # what τ²'s get_response answers
                    raise
            self._tau2_content = self.tau2.to_json_str(result)
        except Exception as exc:
            if spec.kind == "write":
                self._rebuild()
            raise ToolError(str(exc)) from exc
        if spec.kind == "write":
            self._pristine = False
            self._applied.append((spec.requestor, spec.name, arguments))
            self._snapshot = self._hash = None
        # τ² returns pydantic models, dicts with dates and enums, or text: make it plain JSON here.
        return to_jsonable_python(result)

    def call(self, tool_call: dict[str, Any]) -> Observation:
        self._tau2_content = None
        observation = super().call(tool_call)
        self._log_timeline("assistant", self.trace[-1])
        return observation

    def _log_timeline(self, requestor: Requestor, record: ActionRecord) -> None:
        self.timeline.append(TimelineEntry(requestor, record, self._tau2_content))

    def call_user(self, tool_call: dict[str, Any]) -> Observation:
        """Runs a tool on the user's side (telecom: the phone); never raises. Recorded in
        ``user_trace`` and ``timeline``, not in the agent's ``trace``."""
        name = tool_call.get("name") if isinstance(tool_call, dict) else None
        arguments = tool_call.get("arguments", {}) if isinstance(tool_call, dict) else None
        spec = self._domain.user_tool(name) if isinstance(name, str) else None
        self._tau2_content = None
        try:
            if spec is None:
                raise ToolError(
                    f"unknown user tool {name!r}; user tools: {', '.join(self._domain.user_tool_names)}"
                )
            result = self._execute(spec, spec.validate_arguments(arguments))
            observation = Observation(ok=True, content=json.dumps(result, ensure_ascii=False), result=result)
        except ToolError as exc:
            observation = Observation(ok=False, content=f"Error: {exc}")
        record = ActionRecord(
            name=str(name),
            arguments=arguments if isinstance(arguments, dict) else {"_raw": repr(arguments)},
            kind=spec.kind if spec else "unknown",
            ok=observation.ok,
            observation=observation.content,
            result=observation.result,
        )
        self.user_trace.append(record)
        self._log_timeline("user", record)
        return observation

    # -- state -------------------------------------------------------------------------------------
    def snapshot(self) -> Tables:
        if self._snapshot is None:
            user_db = self.tau2.user_tools.db if self.tau2.user_tools is not None else None
            base = self._domain.base_state().tables
            self._snapshot = {
                **db_tables(self.tau2.tools.db, base=base),
                **db_tables(user_db, prefix="user.", base=base),
            }
        return self._snapshot

    def state_hash(self) -> str:
        if self._hash is None:
            self._hash = tables_hash(self.snapshot(), self._domain.base_state())
        return self._hash

    def tau2_copy(self) -> Any:
        """A separate τ² Environment in this episode's current state (for probes that may sync state)."""
        env = self._domain.fresh_tau2_environment(self.task_id)
        for requestor, name, arguments in self._applied:
            env.make_tool_call(name, requestor=requestor, **arguments)
            env.sync_tools()
        return env

    def tau2_hashes(self) -> tuple[str | None, str | None]:
        """τ²'s own (agent DB, user DB) hashes of this episode's state."""
        return self.tau2.get_db_hash(), self.tau2.get_user_db_hash()


# Which table each id parameter of τ²'s tools points into (Phase 1 fills arguments from the data).
# τ²'s payment methods are keyed by an ``id`` field, so the map's keys are named here.
TAU2_REFERENCES = {
    "airline": References(
        user_table="users",
        tables={"users": "user_id", "flights": "flight_number", "reservations": "reservation_id"},
        maps={"payment_methods": "payment_id"},
    ),
    "retail": References(
        user_table="users",
        tables={"users": "user_id", "products": "product_id", "orders": "order_id"},
        maps={"payment_methods": "payment_method_id"},
        names={"item_ids": "item_id", "new_item_ids": "item_id"},
        free_text=frozenset({"reason"}),
    ),
    "telecom": References(
        user_table="customers",
        tables={
            "customers": "customer_id",
            "plans": "plan_id",
            "lines": "line_id",
            "bills": "bill_id",
            "devices": "device_id",
        },
        free_text=frozenset({"reason"}),
    ),
}


class Tau2Domain(Domain):
    """A τ²-bench domain (tools, policy, database and task splits read from the installed package)."""

    source: Literal["tau2"] = "tau2"
    train_seed = 0
    eval_seed = 0  # τ² has one database; the train/test split is by task

    def __init__(self, name: str, tau2: Tau2Source):
        self.name = name
        self._source = tau2
        template = tau2.get_environment()
        self._template = template
        self.policy: str = template.get_policy()
        self.tools = specs_from_toolkit(template.tools, "assistant")
        self.user_tools: list[Tau2ToolSpec] = (
            specs_from_toolkit(template.user_tools, "user") if template.user_tools is not None else []
        )
        self.checks = []
        self.references = TAU2_REFERENCES.get(tau2.name)
        self.gold_hashes: dict[str, str] = {}  # task id -> our hash after the gold replay (evaluate.py)
        # Parsed once per process and never mutated: episodes copy records on access (episode_copy).
        self._base_db = template.tools.db
        self._base_user_db = template.user_tools.db if template.user_tools is not None else None

    @property
    def tau2_source(self) -> Tau2Source:
        return self._source

    # -- environments ------------------------------------------------------------------------------
    def fresh_tau2_environment(self, task_id: str | None = None) -> Any:
        """A new τ² Environment on a private copy of the database, set to a task's initial state."""
        t = self._template
        env = type(t)(
            domain_name=t.domain_name,
            policy=t.policy,
            tools=type(t.tools)(episode_copy(self._base_db)),
            user_tools=type(t.user_tools)(episode_copy(self._base_user_db))
            if t.user_tools is not None
            else None,
        )
        initial = self.tau2_task(task_id).initial_state if task_id is not None else None
        if initial is not None:
            env.set_state(
                initialization_data=initial.initialization_data,
                initialization_actions=initial.initialization_actions,
                message_history=initial.message_history or [],
            )
        return env

    def tau2_environment_constructor(self, solo_mode: bool = False) -> Any:
        """τ²'s ``get_environment`` from memory: the signature τ²'s evaluators call it with."""
        if solo_mode:
            raise ValueError(f"solo mode is not supported by the {self.name} adapter")
        return self.fresh_tau2_environment()

    def new_env(self, seed: int | None = None) -> Tau2Environment:
        return Tau2Environment(self, self.eval_seed if seed is None else seed)

    authored_gold = False  # τ²'s gold includes failing lookups and outputs the agent computes

    def env_for_task(self, task: Task | str) -> Tau2Environment:
        """An episode starting from the task's initial state (telecom tasks set up the phone first)."""
        task_id = task if isinstance(task, str) else task.id
        return Tau2Environment(self, self.eval_seed, task_id=task_id)

    @cached_property
    def _base_state(self) -> BaseState:
        return BaseState({**db_tables(self._base_db), **db_tables(self._base_user_db, prefix="user.")})

    def base_state(self) -> BaseState:
        return self._base_state

    @cached_property
    def _user_by_name(self) -> dict[str, Tau2ToolSpec]:
        return {t.name: t for t in self.user_tools}

    def user_tool(self, name: str) -> Tau2ToolSpec | None:
        return self._user_by_name.get(name)

    @property
    def user_tool_names(self) -> list[str]:
        return [t.name for t in self.user_tools]

    # -- tasks -------------------------------------------------------------------------------------
    @cached_property
    def _tau2_tasks(self) -> dict[str, Any]:
        return {t.id: t for t in self._source.get_tasks("base")}

    @cached_property
    def splits(self) -> dict[str, list[str]]:
        """τ²'s task splits (``base``, ``train``, ``test``; telecom also ``small``/``full``)."""
        return self._source.get_tasks_split()

    def tau2_task(self, task_id: str) -> Any:
        """τ²'s own Task object (evaluation criteria, initial state, user scenario)."""
        found = self._tau2_tasks.get(task_id)
        if found is None:
            found = {t.id: t for t in self._source.get_tasks(None)}.get(task_id)
        if found is None:
            raise KeyError(f"τ² {self.name} has no task {task_id!r}; see domain.splits for the task ids")
        return found

    def tau2_tasks(self, split: Split = "test") -> list[Any]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for {self.name}; splits are {sorted(self.splits)}")
        wanted = set(self.splits[split])
        source = (
            self._tau2_tasks.values() if wanted <= set(self._tau2_tasks) else self._source.get_tasks(None)
        )
        return [t for t in source if t.id in wanted]

    def tasks(self, split: Split = "test") -> list[Task]:
        """τ²'s tasks of ``split`` as our Task records."""
        base = self.base_state().tables
        return [convert_task(t, base) for t in self.tau2_tasks(split)]

    @cached_property
    def _test(self) -> list[Task]:
        return self.tasks("test")

    @cached_property
    def _train(self) -> list[Task]:
        return self.tasks("train")

    @property
    def gold_tasks(self) -> list[Task]:
        return self._test

    @property
    def example_tasks(self) -> list[Task]:
        return self._train
