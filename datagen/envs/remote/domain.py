"""A domain whose tools live on a remote MCP or OpenEnv server, behind the toolkit's one environment
interface, so Phase 1, Phase 2, ``eval tau``, ``envs check`` and ``envs call`` run on it unchanged.

Each episode holds one connection (one server-side environment) from :mod:`.servers`, opened at its
first use and handed back when the episode is closed or dropped. A tool call is the server's: its
answer is the observation, a failed call is an ``Error: ...`` observation, and the trace is recorded
here as in-process. What the server cannot do for us raises :class:`RemoteError` out of the call (a
timeout, a dead server, a malformed answer), so the episode ends as an error and its job is one error
row, never a wrong verdict.

Verification (``Domain.verification``):

- ``state``: the state hash is the server's own (apigen-mt's servers report it with every answer) or
  the canonical hash of the tables it exposes (an MCP resource, declared read calls, OpenEnv's state);
- ``actions``: a server without state is judged on its successful write calls, in order, with their
  arguments: the "state hash" is the hash of that sequence, so the verdict compares it with the
  replayed ground truth's exactly as it compares states.

The state an episode starts from is the same for every episode (the spec's ``start``), so its hash and
tables are fetched once per start and reused while an episode has made no write call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from datagen.envs.base import Domain, Environment, Observation, Task
from datagen.envs.policy import ActionRecord, Violation
from datagen.envs.provenance import ProvenanceRule
from datagen.envs.references import References
from datagen.envs.remote.connections import Answer, Description, RemoteTool
from datagen.envs.remote.loop import RemoteError, background
from datagen.envs.remote.servers import Lease
from datagen.envs.serve.sessions import StartState
from datagen.envs.store import Tables, canonical, canonical_json, state_hash_of
from datagen.envs.tools import ToolError, ToolSpec, check_plain_arguments
from datagen.envs.wire import HASH_URI, STATE_URI
from datagen.recipe.remote_env import CallsState, McpEnv, OpenEnvEnv, ReferencesSpec

log = logging.getLogger(__name__)

GENERIC_POLICY = (
    "# Policy\n\nHelp the user with their request using the tools. Confirm the details with the user before "
    "any action that changes their data, and do not make up information."
)


class _AnyArguments(BaseModel):
    model_config = ConfigDict(extra="allow")


def _unavailable(**_: Any) -> Any:
    raise ToolError("a remote tool runs on its server, not in this process")


def schema_fields(schema: Any) -> set[str]:
    """Every property name in a JSON schema, nested ones too (what a tool's output can feed)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for name, inner in (schema.get("properties") or {}).items():
            found.add(str(name))
            found |= schema_fields(inner)
        for key in ("items", "additionalProperties"):
            found |= schema_fields(schema.get(key))
        for key in ("anyOf", "oneOf", "allOf"):
            for inner in schema.get(key) or []:
                found |= schema_fields(inner)
        for inner in (schema.get("$defs") or {}).values():
            found |= schema_fields(inner)
    return found


def tool_spec(tool: RemoteTool, kind: Literal["read", "write"], produces: set[str] | None = None) -> ToolSpec:
    """A remote tool as the toolkit's ToolSpec: its schema as the server gives it (the server validates);
    what its output can feed, as the server says (apigen-mt's servers) or from its output schema."""
    parameters = dict(tool.parameters) or {"type": "object", "properties": {}}
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    return ToolSpec(
        name=tool.name,
        kind=kind,
        fn=_unavailable,
        description=tool.description,
        schema={
            "type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": parameters},
        },
        args_model=_AnyArguments,
        params=tuple(parameters.get("properties", {})),
        produces=frozenset(produces if produces is not None else schema_fields(tool.outputs)),
    )


def _load_tasks(path: Path | None, served: list[dict[str, Any]]) -> list[Task]:
    """The declared task file's tasks, else those the server gave."""
    rows = json.loads(Path(path).read_text(encoding="utf-8")) if path is not None else served
    return [Task.model_validate(row) for row in rows]


def _first(*values: Any) -> int:
    return next((int(v) for v in values if v is not None), 0)


def references_of(spec: ReferencesSpec) -> References:
    """The references a recipe (or a served domain's description) declares, as Phase 1 reads them."""
    return References(
        user_table=spec.user_table,
        tables=spec.tables,
        maps=spec.maps,
        names=spec.names,
        free_text=frozenset(spec.free_text),
    )


def _references(found: dict[str, Any] | None) -> References | None:
    return references_of(ReferencesSpec.model_validate(found)) if found else None


def _provenance(found: dict[str, Any] | None) -> ProvenanceRule | None:
    if not found:
        return None
    computed = {tool: frozenset(paths) for tool, paths in (found.get("computed") or {}).items()}
    return ProvenanceRule(computed=computed, small_integers=int(found.get("small_integers", 10)))


def _rows(found: Any, call: Any) -> dict[str, Any]:
    for part in (call.path or "").split(".") if call.path else []:
        found = found.get(part) if isinstance(found, dict) else None
    if isinstance(found, dict):
        return found
    if isinstance(found, list) and call.key:
        return {str(row.get(call.key)): row for row in found if isinstance(row, dict)}
    raise RemoteError(
        f"the state call {call.tool} answered {type(found).__name__}; expected an object of records, "
        "or a list of rows with `key:` naming the field that keys them"
    )


class RemoteDomain(Domain):
    """A remote MCP or OpenEnv server as a domain (module docstring)."""

    checks = []  # the server's own checks, if any, come back with its answers

    def __init__(self, spec: McpEnv | OpenEnvEnv, description: Description, servers: Any):
        self.spec = spec
        self.name = spec.name
        self.source = spec.source
        self.servers = servers
        self.description = description
        self.own_state = description.own_state and spec.state.type == "auto"
        self.verification = "actions" if self.state_kind == "none" else "state"
        self.policy = (
            Path(spec.policy_file).read_text(encoding="utf-8")
            if spec.policy_file
            else description.policy or GENERIC_POLICY
        )
        read, write = set(spec.read_tools), set(spec.write_tools)
        produces = description.info.get("produces") or {}
        self.tools = [
            tool_spec(
                t,
                "read" if t.name in read or (t.name not in write and t.read_only) else "write",
                set(produces[t.name]) if t.name in produces else None,
            )
            for t in description.tools
        ]
        info = description.info
        self.servers.seeds = bool(info) if spec.seeds is None else spec.seeds
        self.references = (
            references_of(spec.references) if spec.references else _references(info.get("references"))
        )
        self.provenance = _provenance(info.get("provenance")) or self.provenance
        self.train_seed = _first(spec.train_seed, info.get("train_seed"))
        self.eval_seed = _first(spec.eval_seed, info.get("eval_seed"))
        self._served_tasks = {k: info.get(k) or [] for k in ("gold_tasks", "example_tasks")}
        self._starts: dict[StartState, tuple[str, Tables | None]] = {}

    @property
    def state_kind(self) -> str:
        """server (the server's own), resource, calls, tables (OpenEnv state()), or none."""
        kind = self.spec.state.type
        if kind != "auto":
            return kind
        if self.description.own_state:
            return "server"
        return "tables" if isinstance(self.spec, OpenEnvEnv) else "none"

    def new_env(self, seed: int | None = None) -> RemoteEnvironment:
        return RemoteEnvironment(self, StartState(seed=self.eval_seed if seed is None else seed))

    def env_for_task(self, task: Task) -> RemoteEnvironment:
        if self.servers.seeds and task in self.gold_tasks + self.example_tasks:
            return RemoteEnvironment(self, StartState(task_id=task.id), seed=self.task_seed(task))
        return self.new_env(self.task_seed(task))

    @cached_property
    def _gold(self) -> list[Task]:
        return _load_tasks(self.spec.tasks_file, self._served_tasks["gold_tasks"])

    @property
    def gold_tasks(self) -> list[Task]:
        return self._gold

    @cached_property
    def _examples(self) -> list[Task]:
        return _load_tasks(self.spec.examples_file, self._served_tasks["example_tasks"])

    @property
    def example_tasks(self) -> list[Task]:
        return self._examples

    def close(self) -> None:
        background().run(self.servers.close(), self.spec.timeout_s, self.servers.what)


def _release(lease: Lease) -> None:
    background().spawn(lease.release())


class RemoteEnvironment(Environment):
    """One episode on a remote server (module docstring)."""

    def __init__(self, domain: RemoteDomain, start: StartState, seed: int | None = None):
        super().__init__(domain, start.seed if seed is None else seed)
        self._domain = domain
        self.start = start
        self._lease: Lease | None = None
        self._answer: Answer | None = None  # the last answer: the server's hash and violations after it
        self._writes = 0  # successful write calls since the start (0: the state is the start's)
        self._finalizer: Any = None

    # -- the connection ----------------------------------------------------------------------------
    async def _connection(self) -> Any:
        if self._lease is None:
            self._lease = await self._domain.servers.acquire(self.start)
            lease = self._lease
            self._finalizer = weakref.finalize(self, _release, lease)
        return self._lease.connection

    def _run(self, coro: Any, what: str) -> Any:
        """Waits for a request on this episode's connection (opened first, under the start deadline)."""
        spec, where = self._domain.spec, self._domain.servers.what
        if self._lease is None:
            background().run(self._connection(), spec.start_timeout_s, f"{where} start")
        try:
            return background().run(coro, spec.timeout_s, f"{where} ({what})")
        except RemoteError:
            self._broken()
            raise

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # releases the lease once
        self._lease, self._finalizer = None, None

    def reset(self, seed: int | None = None) -> None:
        self.close()
        if seed is not None:
            self.seed, self.start = seed, StartState(seed=seed)
        self.trace, self._answer, self._writes = [], None, 0

    # -- calls -------------------------------------------------------------------------------------
    def _execute(self, spec: ToolSpec, arguments: dict[str, Any]) -> Any:  # pragma: no cover - call overrides
        raise NotImplementedError

    def call(self, tool_call: dict[str, Any]) -> Observation:
        local = self._refused(tool_call)
        if local is not None:
            return local
        name = tool_call["name"]
        answer = self._run(self._send(name, tool_call.get("arguments", {})), name)
        return self._record(tool_call, answer)

    async def acall(self, tool_call: dict[str, Any]) -> Observation:
        local = self._refused(tool_call)
        if local is not None:
            return local
        spec, name, what = self._domain.spec, tool_call["name"], self._domain.servers.what
        connection = await background().arun(self._connection(), spec.start_timeout_s, f"{what} start")
        coro = connection.call(name, tool_call.get("arguments", {}))
        try:
            answer = await background().arun(coro, spec.timeout_s, f"{what} ({name})")
        except RemoteError:
            self._broken()
            raise
        return self._record(tool_call, answer)

    async def _send(self, name: str, arguments: dict[str, Any]) -> Answer:
        connection = await self._connection()
        return await connection.call(name, arguments)

    def _broken(self) -> None:
        """A request failed in transport or ran out of time: the server may still be busy with it, so
        its process is not handed to another episode (it is stopped when this one lets go of it)."""
        if self._lease is not None:
            self._lease.broken = True

    def _refused(self, tool_call: Any) -> Observation | None:
        """What cannot be sent at all (no name, arguments that are not a JSON object), answered here in the
        words the in-process environment uses."""
        name = tool_call.get("name") if isinstance(tool_call, dict) else None
        arguments = tool_call.get("arguments", {}) if isinstance(tool_call, dict) else None
        try:
            if not isinstance(name, str):
                raise ToolError(
                    f"unknown tool {name!r}; available tools: {', '.join(self.domain.tool_names)}"
                )
            check_plain_arguments(name, arguments)
            return None
        except ToolError as exc:
            observation = Observation(ok=False, content=f"Error: {exc}")
        self.trace.append(
            ActionRecord(
                str(name),
                arguments if isinstance(arguments, dict) else {"_raw": repr(arguments)},
                "unknown",
                False,
                observation.content,
            )
        )
        return observation

    def _record(self, tool_call: dict[str, Any], answer: Answer) -> Observation:
        name, arguments = tool_call["name"], tool_call.get("arguments", {})
        spec = self.domain.tool(name)
        result = None
        if answer.ok:
            try:
                result = json.loads(answer.text)
            except json.JSONDecodeError:
                result = answer.text
        kind = spec.kind if spec else "unknown"
        self.trace.append(ActionRecord(name, arguments, kind, answer.ok, answer.text, result))
        self._answer = answer
        if answer.ok and kind != "read":
            self._writes += 1
        return Observation(ok=answer.ok, content=answer.text, result=result)

    # -- state -------------------------------------------------------------------------------------
    def _cached_start(self) -> tuple[str, Tables | None] | None:
        return self._domain._starts.get(self.start) if self._writes == 0 else None

    def state_hash(self) -> str:
        if self._domain.verification == "actions":
            writes = [[r.name, r.arguments] for r in self.trace if r.ok and r.kind != "read"]
            return hashlib.sha256(canonical_json(writes).encode()).hexdigest()
        cached = self._cached_start()
        if cached is not None:
            return cached[0]
        if self._domain.state_kind == "server":
            if self._answer is not None and self._answer.state_hash:
                return self._answer.state_hash
            found = self._run(self._server_hash(), "state hash")
        else:
            found = state_hash_of(self.snapshot())
        if self._writes == 0:
            self._domain._starts.setdefault(self.start, (found, None))
        return found

    async def _server_hash(self) -> str:
        connection = await self._connection()
        if isinstance(self._domain.spec, McpEnv):
            return (await connection.read(HASH_URI)).strip()
        return str(connection.opening.get("state_hash", ""))

    def snapshot(self) -> Tables:
        kind = self._domain.state_kind
        if kind == "none":
            return {}
        cached = self._cached_start()
        if cached is not None and cached[1] is not None:
            return cached[1]
        tables = canonical(self._run(self._tables(), "state"))
        if self._writes == 0:
            start_hash = state_hash_of(tables)
            self._domain._starts[self.start] = (
                self._domain._starts.get(self.start, (start_hash,))[0],
                tables,
            )
        return tables

    async def _tables(self) -> Tables:
        spec = self._domain.spec
        connection = await self._connection()
        kind = self._domain.state_kind
        if isinstance(spec, OpenEnvEnv):
            found = await connection.tables()
            if found is None:
                raise RemoteError(
                    f"{self._domain.servers.what}: state() has no `tables`; declare state: none"
                )
            return found
        if kind in ("server", "resource"):
            uri = STATE_URI if kind == "server" else spec.state.uri  # type: ignore[union-attr]
            text = await connection.read(uri)
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise RemoteError(f"the state resource {uri} is not JSON: {exc}") from exc
        assert isinstance(spec.state, CallsState)
        tables: Tables = {}
        for table, call in spec.state.tables.items():
            answer = await connection.call(call.tool, call.arguments)
            if not answer.ok:
                raise RemoteError(
                    f"the state call {call.tool} for table {table!r} failed: {answer.text[:300]}"
                )
            try:
                tables[table] = _rows(json.loads(answer.text), call)
            except json.JSONDecodeError as exc:
                raise RemoteError(f"the state call {call.tool} did not answer JSON: {exc}") from exc
        return tables

    def policy_violations(self, before: Tables, trace: Any = None) -> list[Violation]:
        """The server's own policy checks over this episode's calls (apigen-mt's servers run the domain's
        checks); a server without them has none to break."""
        if self._domain.state_kind != "server" or not self.trace:
            return []
        found = self._run(self._violations(), "policy checks")
        return [Violation(v.get("check", ""), v.get("rule", ""), v.get("message", "")) for v in found]

    async def _violations(self) -> list[dict[str, str]]:
        return await (await self._connection()).violations()
