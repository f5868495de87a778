"""How a recipe declares an environment whose tools live elsewhere: an MCP server (a command run over
stdio, or a URL) or an OpenEnv server, selected by ``source``::

    env:
      source: mcp
      name: notes                       # the domain name runs, blueprints and dialogues record
      command: [python, notes_app.py, --db, "{slot_dir}/notes.json"]
      start: {type: command, command: [cp, seed.json, "{slot_dir}/notes.json"]}
      state: {type: resource, uri: "notes://state"}
      references: {user_table: users, tables: {users: user_id, notes: note_id}}

    env: {source: openenv, name: retail-remote, url: "http://127.0.0.1:8000"}

- ``start``: how every episode gets the same initial state: ``session`` (a fresh MCP session; the
  server keeps its state per session), ``restart`` (the stdio command is started anew), ``command``
  (a command that restores a copy, e.g. of a database file, then a fresh connection), ``call`` (a tool
  of the server that resets it); an OpenEnv server is ``reset``. ``{slot}``/``{slot_dir}`` in a command
  name the episode's server process: a server with one global state runs once per concurrent episode.
- ``state``: where the verifier reads the state: ``auto`` (the server's own when it offers it:
  apigen-mt's served domains, an OpenEnv ``state()`` with ``tables``), a declared MCP ``resource``,
  declared read ``calls`` (a tool and its arguments per table, e.g. a SQL query tool), or ``none``:
  then Phase 2 verifies a dialogue by its expected outputs and its write calls against those of the
  replayed ground truth (``verification: actions`` in every verdict).

These are typed settings only, read with the rest of the recipe: :mod:`datagen.envs.remote` starts or
reaches the server they declare (the recipe layer sits below the environments).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from datagen.recipe import Strict


class AutoState(Strict):
    type: Literal["auto"] = Field("auto", description="the server's own state, when it offers it")


class ResourceState(Strict):
    type: Literal["resource"] = Field("resource", description="read the state from an MCP resource")
    uri: str = Field(description="an MCP resource whose text is JSON tables {table: {id: record}}")


class TableCall(Strict):
    tool: str = Field(description="the read tool that returns the table's rows")
    arguments: dict[str, Any] = Field(default_factory=dict, description="the arguments it is called with")
    key: str | None = Field(
        None, description="the field that keys each row when the answer is a list of rows"
    )
    path: str | None = Field(None, description="dotted path to the rows inside the answer (e.g. 'rows')")


class CallsState(Strict):
    type: Literal["calls"] = Field("calls", description="read the state by declared read calls")
    tables: dict[str, TableCall] = Field(description="table name -> the read call that returns its rows")


class NoState(Strict):
    type: Literal["none"] = Field(
        "none", description="no state: verify by expected outputs and the write calls of the replayed truth"
    )


StateSource = Annotated[AutoState | ResourceState | CallsState | NoState, Field(discriminator="type")]


class FreshSession(Strict):
    type: Literal["session"] = Field("session", description="each episode opens a fresh MCP session")


class Restart(Strict):
    type: Literal["restart"] = Field("restart", description="each episode starts the stdio command anew")


class RestoreCommand(Strict):
    type: Literal["command"] = Field(
        "command", description="a command restores the initial state before each episode"
    )
    command: list[str] = Field(min_length=1, description="run before each episode ({slot}, {slot_dir})")


class ResetCall(Strict):
    type: Literal["call"] = Field("call", description="a tool of the server resets it before each episode")
    tool: str = Field(description="the reset tool")
    arguments: dict[str, Any] = Field(default_factory=dict, description="the arguments it is called with")


class ServerReset(Strict):
    type: Literal["reset"] = Field("reset", description="the OpenEnv server's own reset")


StartSource = Annotated[
    FreshSession | Restart | RestoreCommand | ResetCall | ServerReset, Field(discriminator="type")
]


class ReferencesSpec(Strict):
    """:class:`datagen.envs.references.References` in YAML (Phase 1 fills arguments from the data)."""

    user_table: str = Field(description="the table of the users (customers) tasks are written for")
    tables: dict[str, str] = Field(
        default_factory=dict, description="table -> the name its keys go by as ids (orders: order_id)"
    )
    maps: dict[str, str] = Field(
        default_factory=dict,
        description="record fields that map ids to records (a user's payment_methods) -> the id name",
    )
    names: dict[str, str] = Field(
        default_factory=dict,
        description="other parameters holding such ids -> the id name (from_account_id: account_id)",
    )
    free_text: list[str] = Field(
        default_factory=list, description="parameters the customer words freely (never filled from data)"
    )


class RemoteEnvBase(Strict):
    name: str = Field(description="the domain name runs, blueprints and dialogues record")
    policy_file: Path | None = Field(None, description="the policy, when the server offers none")
    references: ReferencesSpec | None = Field(
        None, description="how tool parameters point into the state's tables (grounded Phase 1)"
    )
    read_tools: list[str] = Field(
        default_factory=list, description="tools that only read (else readOnlyHint)"
    )
    write_tools: list[str] = Field(default_factory=list, description="tools that change state")
    tasks_file: Path | None = Field(None, description="gold tasks (a JSON list of tasks) for eval and checks")
    examples_file: Path | None = Field(None, description="example tasks (few-shot pool of Phase 1)")
    state: StateSource = Field(default_factory=AutoState, description="where the verifier reads the state")
    timeout_s: float = Field(30.0, gt=0, description="per request; one that takes longer fails its job")
    seeds: bool | None = Field(
        None, description="pass each episode's seed/task to the server (default: when it is apigen-mt's own)"
    )
    train_seed: int | None = Field(
        None, description="the seed Phase 1 defines tasks on (default: the server's, or 0)"
    )
    eval_seed: int | None = Field(
        None, description="the seed gold tasks run on (default: the server's, or 0)"
    )
    start_timeout_s: float = Field(120.0, gt=0, description="for the server to start and describe itself")


class McpEnv(RemoteEnvBase):
    source: Literal["mcp"] = Field(description="an MCP server")
    command: list[str] | None = Field(None, min_length=1, description="a stdio server: argv")
    url: str | None = Field(None, description="a streamable-HTTP server (handshake-era sessions)")
    cwd: Path | None = Field(None, description="the working directory of the stdio command")
    environment: dict[str, str] = Field(default_factory=dict, description="extra variables for the command")
    start: StartSource = Field(
        default_factory=FreshSession, description="how every episode gets the same initial state"
    )
    max_processes: int = Field(64, ge=1, description="stdio server processes at most (one per episode)")

    @model_validator(mode="after")
    def _one_server(self) -> McpEnv:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP env names its server by exactly one of `command` (stdio) or `url`")
        if isinstance(self.start, ServerReset):
            raise ValueError(
                "start: reset is for OpenEnv servers; an MCP server starts by session/restart/command/call"
            )
        if self.url is not None and isinstance(self.start, Restart):
            raise ValueError(
                "start: restart needs a `command` to run; a URL server starts with a fresh session"
            )
        return self


class OpenEnvEnv(RemoteEnvBase):
    source: Literal["openenv"] = Field(description="an OpenEnv server")
    url: str = Field(description="the OpenEnv server (http://HOST:PORT)")
    start: StartSource = Field(default_factory=ServerReset, description="always the server's own reset")

    @model_validator(mode="after")
    def _reset(self) -> OpenEnvEnv:
        if not isinstance(self.start, ServerReset):
            raise ValueError(
                "an OpenEnv server starts every episode with its own reset (start: {type: reset})"
            )
        if isinstance(self.state, (ResourceState, CallsState)):
            raise ValueError("an OpenEnv server's state is its state(); use state: auto or none")
        return self


RemoteEnv = Annotated[McpEnv | OpenEnvEnv, Field(discriminator="source")]


def _env_kind(value: Any) -> str:
    return "remote" if isinstance(value, dict | McpEnv | OpenEnvEnv) else "name"


# A recipe's ``env:``: a domain name (or folder) or a remote declaration; a mapping is read as a remote
# declaration only, so its errors name its own keys rather than "expected a string".
EnvField = Annotated[
    Annotated[str, Tag("name")] | Annotated[RemoteEnv, Tag("remote")], Discriminator(_env_kind)
]
