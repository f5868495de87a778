"""Connections to remote servers, through the protocols' own clients: the ``mcp`` SDK's ``Client`` and
openenv-core's ``GenericEnvClient``. Each connection is one session (one environment on the server)
and lives on the background loop (:mod:`datagen.envs.remote.loop`).

What a connection gives the remote environment is the same whatever the protocol: the tools, the
policy where the server has one, a tool call's answer (with the state hash after it when the server
reports it: apigen-mt's served domains do), the policy violations so far (theirs too), and the state
as tables.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from datagen.envs.remote.loop import RemoteError
from datagen.envs.wire import DOMAIN_URI, HASH_META, POLICY_URI, STATE_URI, VIOLATIONS_URI


@dataclass
class RemoteTool:
    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool | None  # the server's readOnlyHint, when it gives one
    outputs: dict[str, Any] | None = None  # the server's output schema, when it gives one


@dataclass
class Answer:
    ok: bool
    text: str
    state_hash: str | None = None  # after the call, when the server says it


@dataclass
class Description:
    tools: list[RemoteTool]
    policy: str | None
    own_state: bool  # apigen-mt's server: the state hash with every answer, violations and tables on request
    resources: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # apigen-mt's servers: seeds, references, tasks


def error_text(text: str) -> str:
    """A failed call's text in the toolkit's shape (``Error: ...``), whoever wrote it."""
    return text if text.startswith("Error") else f"Error: {text}"


def _joined(blocks: list[Any]) -> str:
    return "\n".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text")


def http_target(url: str, http_client: Any) -> Any:
    """The transport of a streamable-HTTP server over a shared HTTP client (a new client per session
    would cost a fresh connection pool and TLS setup every episode)."""
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(url, http_client=http_client)


class McpConnection:
    """One MCP session, held open by its own task (anyio scopes must close where they opened)."""

    def __init__(self, target: Any, what: str, errlog: TextIO | None = None):
        self.target, self.what, self.errlog = target, what, errlog
        self.client: Any = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> McpConnection:
        from mcp.client.client import Client

        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def hold() -> None:
            try:
                async with Client(self.target, mode="legacy") as client:
                    self.client = client
                    ready.set_result(None)
                    await self._stop.wait()
            except BaseException as exc:  # a server that cannot start, or one that died
                if not ready.done():
                    ready.set_exception(RemoteError(f"cannot reach {self.what}: {type(exc).__name__}: {exc}"))
                if not isinstance(exc, Exception):
                    raise
            finally:
                self.client = None

        self._task = asyncio.ensure_future(hold())
        await ready
        return self

    def _live(self) -> Any:
        if self.client is None:
            raise RemoteError(f"{self.what} closed the connection (the server died or was stopped)")
        return self.client

    async def describe(self) -> Description:
        client = self._live()
        tools = [
            RemoteTool(
                t.name,
                t.description or t.name,
                dict(t.input_schema),
                t.annotations.read_only_hint if t.annotations is not None else None,
                dict(t.output_schema) if t.output_schema else None,
            )
            for t in (await client.list_tools()).tools
        ]
        resources = await self._resource_uris(client)
        policy = await self.read(POLICY_URI) if POLICY_URI in resources else await self._policy_prompt(client)
        info = json.loads(await self.read(DOMAIN_URI)) if DOMAIN_URI in resources else {}
        return Description(tools, policy, own_state=STATE_URI in resources, resources=resources, info=info)

    async def _policy_prompt(self, client: Any) -> str | None:
        """The text of the server's prompt named ``policy`` (the convention apigen-mt's servers follow)."""
        capabilities = client.server_capabilities
        if capabilities is None or capabilities.prompts is None:
            return None
        if "policy" not in [p.name for p in (await client.list_prompts()).prompts]:
            return None
        prompt = await client.get_prompt("policy")
        return "\n\n".join(_joined([m.content]) for m in prompt.messages) or None

    async def _resource_uris(self, client: Any) -> list[str]:
        capabilities = client.server_capabilities
        if capabilities is None or capabilities.resources is None:
            return []
        return [str(r.uri) for r in (await client.list_resources()).resources]

    async def call(self, name: str, arguments: dict[str, Any]) -> Answer:
        try:
            result = await self._live().call_tool(name, arguments)
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(
                f"{self.what}: the call {name} failed in transport: {type(exc).__name__}: {exc}"
            ) from exc
        text = _joined(result.content)
        meta = result.meta or {}
        if not text and result.structured_content is not None:
            structured = result.structured_content
            # fastmcp wraps a tool's non-object value as {"result": value} (and says so in _meta)
            if (meta.get("fastmcp") or {}).get("wrap_result") and isinstance(structured, dict):
                structured = structured.get("result")
            text = json.dumps(structured, ensure_ascii=False)
        return Answer(
            ok=not result.is_error,
            text=error_text(text) if result.is_error else text,
            state_hash=meta.get(HASH_META),
        )

    async def violations(self) -> list[dict[str, str]]:
        """The policy checks this session's calls broke (apigen-mt's own servers)."""
        return json.loads(await self.read(VIOLATIONS_URI))

    async def read(self, uri: str) -> str:
        try:
            found = await self._live().read_resource(uri, cache_mode="bypass")
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(f"{self.what}: reading {uri} failed: {type(exc).__name__}: {exc}") from exc
        return "".join(getattr(c, "text", "") for c in found.contents)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def stdio_target(command: list[str], cwd: Path | None, environment: dict[str, str], errlog: TextIO) -> Any:
    """The transport of a stdio server: the command, its variables, its stderr to ``errlog``."""
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=command[0], args=command[1:], env=environment or None, cwd=str(cwd) if cwd else None
    )
    return stdio_client(params, errlog=errlog)


class OpenEnvConnection:
    """One OpenEnv WebSocket session (openenv-core's ``GenericEnvClient``)."""

    def __init__(self, url: str, what: str, timeout_s: float):
        from openenv.core import GenericEnvClient

        self.what = what
        self.client = GenericEnvClient(base_url=url, connect_timeout_s=timeout_s, message_timeout_s=timeout_s)
        self.opening: dict[str, Any] = {}

    async def open(self, reset: dict[str, Any]) -> OpenEnvConnection:
        try:
            await self.client.connect()
            result = await self.client.reset(**reset)
        except Exception as exc:
            raise RemoteError(f"cannot reach {self.what}: {type(exc).__name__}: {exc}") from exc
        self.opening = result.observation if isinstance(result.observation, dict) else {}
        if self.opening.get("kind") == "error":
            raise RemoteError(f"{self.what} refused the reset {reset}: {self.opening.get('content')}")
        return self

    async def _step(self, action: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await self.client.step(action)
        except Exception as exc:
            raise RemoteError(
                f"{self.what}: step {action.get('type')} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result.observation, dict):
            raise RemoteError(
                f"{self.what}: expected an observation object, found {result.observation!r}"[:300]
            )
        return result.observation

    async def describe(self) -> Description:
        tools = self.opening.get("tools")
        if isinstance(tools, list):  # apigen-mt's own server: OpenAI function schemas
            reads = set(self.opening.get("read_tools") or [])
            found = [
                RemoteTool(
                    t["function"]["name"],
                    t["function"].get("description", ""),
                    t["function"]["parameters"],
                    t["function"]["name"] in reads,
                )
                for t in tools
            ]
        else:  # OpenEnv's MCP convention: a list_tools action
            listed = (await self._step({"type": "list_tools"})).get("tools") or []
            found = [
                RemoteTool(t["name"], t.get("description", ""), t.get("input_schema", {}), None)
                for t in listed
            ]
        own = "state_hash" in self.opening
        info: dict[str, Any] = {}
        if own:  # apigen-mt's own server says what else a client needs when asked
            try:
                described = await self.client.reset(describe=True)
            except Exception as exc:
                raise RemoteError(
                    f"{self.what}: reset(describe=True) failed: {type(exc).__name__}: {exc}"
                ) from exc
            info = (described.observation or {}).get("domain") or {}
        return Description(found, self.opening.get("policy"), own_state=own, info=info)

    async def call(self, name: str, arguments: dict[str, Any]) -> Answer:
        observation = await self._step({"type": "call_tool", "tool_name": name, "arguments": arguments})
        if "ok" in observation and "content" in observation:  # apigen-mt's own server
            return Answer(
                bool(observation["ok"]), str(observation["content"]), observation.get("state_hash") or None
            )
        return _mcp_observation(observation, self.what)

    async def violations(self) -> list[dict[str, str]]:
        """The policy checks this session's calls broke (apigen-mt's own servers: a check action)."""
        found = (await self._step({"type": "check"})).get("violations")
        if not isinstance(found, list):
            raise RemoteError(
                f"{self.what}: expected the violations of a check action, found {found!r}"[:300]
            )
        return found

    async def tables(self) -> dict[str, Any] | None:
        try:
            state = await self.client.state()
        except Exception as exc:
            raise RemoteError(f"{self.what}: state() failed: {type(exc).__name__}: {exc}") from exc
        found = state.get("tables") if isinstance(state, dict) else None
        return found if isinstance(found, dict) else None

    async def close(self) -> None:
        await self.client.close()


def _mcp_observation(observation: dict[str, Any], what: str) -> Answer:
    """OpenEnv's ``CallToolObservation``: a framework ``error``, or an MCP ``CallToolResult``."""
    error = observation.get("error")
    if error:
        return Answer(False, error_text(str(error.get("message") if isinstance(error, dict) else error)))
    result = observation.get("result")
    if not isinstance(result, dict):
        raise RemoteError(
            f"{what}: expected a call_tool observation with a result, found {observation!r}"[:300]
        )
    blocks = result.get("content") or []
    text = "\n".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    if not text and result.get("structured_content") is not None:
        text = json.dumps(result["structured_content"], ensure_ascii=False)
    failed = bool(result.get("is_error") or result.get("isError"))
    return Answer(not failed, error_text(text) if failed else text)
