"""The environment interface every part of the toolkit uses, and its native implementation.

- ``Domain``: what is shared by all episodes of one environment (tools, policy, checks, gold tasks,
  cached databases). Built once per process.
- ``Environment``: one episode's state: ``reset``, ``call``, ``replay``, ``state_hash``,
  ``snapshot``, ``diff``, ``policy_violations``. Nothing raises out of ``call``; a failed call leaves
  the state unchanged and returns an error observation the agent can read.

Native domains (``NativeDomain``) keep their state in a copy-on-write ``Store``; adapters (τ²-bench)
subclass ``Domain``/``Environment`` with their own state.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.envs.policy import ActionRecord, PolicyCheck, Violation, checks_in, run_checks
from datagen.envs.provenance import DEFAULT_RULE, ProvenanceRule
from datagen.envs.references import References
from datagen.envs.store import BaseState, Store, Tables, canonical, diff_tables
from datagen.envs.tools import ToolError, ToolSpec, dependency_graph, tools_in

log = logging.getLogger(__name__)

MAX_STRING_ARGUMENT = 2000  # longer strings are not plausible ids, names or reasons


class ToolCallModel(BaseModel):
    """One tool call as tasks and blueprints store it: ``{"name": ..., "arguments": {...}}``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    """A task: the user's goal and the ground truth that verifies it (gold task or blueprint core)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    user_id: str | None = None
    persona: str
    instruction: str
    actions: list[ToolCallModel]
    outputs: list[str] = Field(default_factory=list)
    seed: int | None = None  # the database seed the task is defined on (None: the domain's eval seed)
    notes: str = ""


@dataclass(frozen=True)
class Observation:
    """What one tool call returned: ``ok`` false for an error; ``content`` is what the agent reads
    (the result as JSON, or ``Error: ...``); ``result`` the result as data (None on error)."""

    ok: bool
    content: str  # what the agent reads: JSON of the result, or "Error: ..."
    result: Any = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _oversized_string(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) > MAX_STRING_ARGUMENT
    if isinstance(value, dict):
        return any(_oversized_string(v) for v in value.values())
    if isinstance(value, list):
        return any(_oversized_string(v) for v in value)
    return False


class Environment(ABC):
    """One episode. Each episode owns its state; many run concurrently in one process."""

    def __init__(self, domain: Domain, seed: int):
        self.domain = domain
        self.seed = seed
        self.trace: list[ActionRecord] = []

    @abstractmethod
    def reset(self, seed: int | None = None) -> None:
        """Fresh state for ``seed`` (default: the current one); clears the trace."""

    @abstractmethod
    def _execute(self, spec: ToolSpec, arguments: dict[str, Any]) -> Any:
        """Runs one validated call; raises ToolError (or anything) on failure, changing nothing."""

    @abstractmethod
    def state_hash(self) -> str:
        """Canonical hash of the whole state (key order and 10 vs 10.0 do not matter)."""

    @abstractmethod
    def snapshot(self) -> Tables:
        """The whole state as JSON-able tables; treat as read-only."""

    @staticmethod
    def diff(before: Tables, after: Tables) -> list[str]:
        """The change from ``before`` to ``after`` (two snapshots) as readable patch lines."""
        return diff_tables(before, after)

    def call(self, tool_call: dict[str, Any]) -> Observation:
        """Executes ``{"name", "arguments"}``; never raises."""
        name = tool_call.get("name") if isinstance(tool_call, dict) else None
        arguments = tool_call.get("arguments", {}) if isinstance(tool_call, dict) else None
        spec = self.domain.tool(name) if isinstance(name, str) else None
        try:
            if spec is None:
                raise ToolError(
                    f"unknown tool {name!r}; available tools: {', '.join(self.domain.tool_names)}"
                )
            if _oversized_string(arguments):
                raise ToolError(f"an argument of {spec.name} is longer than {MAX_STRING_ARGUMENT} characters")
            values = spec.validate_arguments(arguments)
            result = _jsonable(self._execute(spec, values))
            observation = Observation(ok=True, content=json.dumps(result, ensure_ascii=False), result=result)
        except ToolError as exc:
            observation = Observation(ok=False, content=f"Error: {exc}")
        except KeyError as exc:
            observation = Observation(ok=False, content=f"Error: {exc.args[0] if exc.args else exc}")
        except Exception as exc:
            log.warning("tool %s failed unexpectedly: %r", name, exc, exc_info=True)
            observation = Observation(ok=False, content=f"Error: {name} failed: {type(exc).__name__}: {exc}")
        safe_args = arguments if isinstance(arguments, dict) else {"_raw": repr(arguments)}
        self.trace.append(
            ActionRecord(
                name=str(name),
                arguments=safe_args,
                kind=spec.kind if spec else "unknown",
                ok=observation.ok,
                observation=observation.content,
                result=observation.result,
            )
        )
        return observation

    async def acall(self, tool_call: dict[str, Any]) -> Observation:
        """``call`` for the episode loop: an environment whose calls cross a network (a remote MCP or
        OpenEnv server, :mod:`datagen.envs.remote`) answers without holding up the other episodes."""
        return self.call(tool_call)

    def close(self) -> None:  # noqa: B027 - optional hook: only remote environments hold anything
        """Releases what the episode holds outside this process (a remote session); a no-op here."""

    def replay(self, actions: Sequence[dict[str, Any] | ToolCallModel]) -> list[Observation]:
        """Runs ``actions`` in order with :meth:`call` (a failed call does not stop the rest)."""
        calls = [a.model_dump() if isinstance(a, ToolCallModel) else a for a in actions]
        return [self.call(c) for c in calls]

    def policy_violations(
        self, before: Tables, trace: Sequence[ActionRecord] | None = None
    ) -> list[Violation]:
        """The domain's policy checks on ``trace`` (default: this episode's), from the state ``before``
        to the state now; empty when no rule is broken."""
        return run_checks(self.domain.checks, before, self.trace if trace is None else trace, self.snapshot())


class Domain(ABC):
    """Everything shared by the episodes of one environment."""

    name: str
    source: Literal["native", "tau2", "user", "mcp", "openenv"]
    policy: str
    tools: list[ToolSpec]
    checks: list[PolicyCheck]
    train_seed: int = 0
    eval_seed: int = 1
    # Our own domains' gold tasks are written so every gold call succeeds and every expected output
    # can be read in some observation; imported task sets (τ²) need not hold to that.
    authored_gold: bool = True
    # Tools of the user's own device (τ²'s telecom phone), run by the environment's ``call_user`` out
    # of the agent's view; most domains give the user none.
    user_tools: Sequence[ToolSpec] = ()
    # Which table each id parameter points into (datagen.envs.references); Phase 1 needs it to fill
    # tool arguments from the data, and refuses a domain without it.
    references: References | None = None
    # Which argument values an agent may write without anyone having said them (Phase 2's provenance
    # check, datagen.envs.provenance).
    provenance: ProvenanceRule = DEFAULT_RULE
    # How Phase 2 verifies a dialogue: "state" (final state hash against the replayed ground truth)
    # or, for a remote server that exposes no state, "actions" (the successful write calls, in order,
    # against those of the replayed ground truth); recorded in every verdict.
    verification: Literal["state", "actions"] = "state"

    @abstractmethod
    def new_env(self, seed: int | None = None) -> Environment:
        """A fresh episode on the database of ``seed`` (default: the evaluation seed)."""

    def task_seed(self, task: Task) -> int:
        """The seed ``task`` starts from: its own, else the evaluation seed."""
        return self.eval_seed if task.seed is None else task.seed

    def env_for_task(self, task: Task) -> Environment:
        """A fresh episode in the state ``task`` starts from (adapters may set up more than a seed)."""
        return self.new_env(self.task_seed(task))

    @property
    @abstractmethod
    def gold_tasks(self) -> list[Task]:
        """Held-out tasks (evaluation seed) with verified ground truth."""

    @property
    def example_tasks(self) -> list[Task]:
        """Few-shot seed pool for Phase 1 on the training seed; never the held-out gold tasks."""
        return []

    @cached_property
    def _by_name(self) -> dict[str, ToolSpec]:
        return {t.name: t for t in self.tools}

    def tool(self, name: str) -> ToolSpec | None:
        """The tool called ``name``, or None."""
        return self._by_name.get(name)

    @property
    def tool_names(self) -> list[str]:
        """Every tool's name, in declaration order."""
        return [t.name for t in self.tools]

    def tool_schemas(self) -> list[dict[str, Any]]:
        """Every tool's JSON schema in the OpenAI tools format (what the agent is shown)."""
        return [t.schema for t in self.tools]

    def read_tools(self) -> list[ToolSpec]:
        """The tools that only read the state."""
        return [t for t in self.tools if t.kind == "read"]

    def write_tools(self) -> list[ToolSpec]:
        """The tools that change the state (the ones a blueprint's ground-truth actions call)."""
        return [t for t in self.tools if t.kind == "write"]

    def dependency_graph(self) -> dict[str, list[str]]:
        """Tool name -> the tools whose inputs its outputs can feed (Phase 1's API-graph walk)."""
        return dependency_graph(self.tools)


class NativeEnvironment(Environment):
    """An episode of a :class:`NativeDomain`: its state is a copy-on-write ``Store`` over the domain's
    shared base database, and each call runs in a transaction."""

    def __init__(self, domain: NativeDomain, seed: int):
        super().__init__(domain, seed)
        self._domain: NativeDomain = domain
        self.store = Store(domain.base(seed))

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self.store = Store(self._domain.base(self.seed))
        self.trace = []

    def _execute(self, spec: ToolSpec, arguments: dict[str, Any]) -> Any:
        with self.store.transaction():
            result = _jsonable(spec.fn(self.store, **arguments))
            # A result that cannot be shown to the agent must fail the call while it can still roll back.
            json.dumps(result, ensure_ascii=False)
            return result

    def state_hash(self) -> str:
        return self.store.state_hash()

    def snapshot(self) -> Tables:
        return self.store.snapshot()


class NativeDomain(Domain):
    """A domain defined by a database generator, a tools list, a policy file, checks and task files."""

    def __init__(
        self,
        *,
        name: str,
        build_database: Callable[[int], Tables],
        db_model: type[BaseModel],
        tools: list[ToolSpec],
        policy_path: Path,
        checks: list[PolicyCheck],
        tasks_path: Path | None = None,
        examples_path: Path | None = None,
        source: Literal["native", "user"] = "native",
        train_seed: int = 0,
        eval_seed: int = 1,
        references: References | None = None,
        provenance: ProvenanceRule = DEFAULT_RULE,
    ):
        self.name = name
        self.provenance = provenance
        self.source = source
        self._build_database = build_database
        self.db_model = db_model
        self.tools = tools
        self.policy = policy_path.read_text(encoding="utf-8")
        self.checks = checks
        self._tasks_path = tasks_path
        self._examples_path = examples_path
        self.train_seed = train_seed
        self.eval_seed = eval_seed
        self.references = references
        self._bases: dict[int, BaseState] = {}

    @classmethod
    def in_folder(
        cls, folder: Path, *, tools: ModuleType, checks: ModuleType, **settings: Any
    ) -> NativeDomain:
        """The domain of a folder laid out as every domain's is (``docs/guides/add-a-domain.md``):
        ``policy.md``, ``tasks.json`` and ``examples.json`` beside the ``tools`` module (its ``@tool``
        functions) and the ``checks`` module (its policy checks); ``settings`` are the other keywords of
        the constructor (name, database, seeds, references, provenance)."""
        return cls(
            tools=tools_in(tools),
            checks=checks_in(checks),
            policy_path=folder / "policy.md",
            tasks_path=folder / "tasks.json",
            examples_path=folder / "examples.json",
            **settings,
        )

    def database(self, seed: int) -> Tables:
        """The validated database for ``seed`` (the same seed gives the same data, byte for byte)."""
        tables = self._build_database(seed)
        self.db_model.model_validate(tables)  # unknown fields and wrong types are rejected here
        return canonical(tables)

    def base(self, seed: int) -> BaseState:
        """The immutable database of ``seed``, built once and shared by every episode on it."""
        found = self._bases.get(seed)
        if found is None:
            found = self._bases[seed] = BaseState(self.database(seed))
        return found

    def new_env(self, seed: int | None = None) -> NativeEnvironment:
        """A fresh episode on the database of ``seed`` (default: the evaluation seed)."""
        return NativeEnvironment(self, self.eval_seed if seed is None else seed)

    @staticmethod
    def _load_tasks(path: Path | None) -> list[Task]:
        if path is None or not path.exists():
            return []
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Task.model_validate(row) for row in rows]

    @cached_property
    def _gold(self) -> list[Task]:
        return self._load_tasks(self._tasks_path)

    @property
    def gold_tasks(self) -> list[Task]:
        return self._gold

    @cached_property
    def _examples(self) -> list[Task]:
        return self._load_tasks(self._examples_path)

    @property
    def example_tasks(self) -> list[Task]:
        return self._examples
