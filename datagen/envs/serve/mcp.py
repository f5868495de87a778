"""A domain as an MCP server, on the ``mcp`` SDK's low-level ``Server`` (no protocol code of ours).

What a client sees:

- every tool of the domain with its JSON schema and description, read tools marked
  ``readOnlyHint``; a call runs on the session's own environment, and a failed call is a tool error
  (``isError``) whose text is the domain's own ``Error: ...`` line; like in-process, it changes nothing;
- the policy as the prompt ``policy`` and the resource ``apigen://policy``;
- the session's state as resources: ``apigen://state`` (the tables, JSON), ``apigen://state-hash``
  (the canonical hash ``state_hash`` gives in-process), ``apigen://violations`` (the domain's policy
  checks over the session's calls so far); every call result carries the state hash after it in
  ``_meta["apigen-mt/state_hash"]``, so a verifier need not read the state.

One environment per client session: over stdio the process serves one client; over HTTP a session is
the handshake-era MCP session (``Mcp-Session-Id``). Where a session starts is given at session start:
the server's ``--seed``/``--task`` by default, and over HTTP the URL the client connects to
(``http://HOST:PORT/mcp?seed=0`` or ``?task=ID``). The 2026-07-28 protocol has no session, so over
HTTP a stateless request may list and read the policy but a tool call or state read is refused with a
tool error that says to connect with a handshake-era session (``Client(url, mode="legacy")``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from datagen.envs.base import Domain
from datagen.envs.serve.sessions import Session, Sessions, StartError, StartState, domain_info
from datagen.envs.wire import (
    DOMAIN_URI,
    HASH_META,
    HASH_URI,
    POLICY_URI,
    STATE_URI,
    VIOLATIONS_URI,
)

log = logging.getLogger(__name__)

STDIO_SESSION = "stdio"  # a stdio server process serves exactly one client

STATELESS = (
    "this server keeps one environment per MCP session, and a 2026-07-28 request over HTTP has none: "
    "connect with a handshake-era session (mcp: Client(url, mode='legacy')) or run the server over stdio"
)


class SessionRequired(RuntimeError):
    """A stateful request that names no session (a 2026-07-28 request over HTTP)."""


def session_of(ctx: Any) -> tuple[str, StartState | None]:
    """(session key, the start state the client asked for) of a request. Over HTTP the key is the
    ``Mcp-Session-Id`` header and the start state is read from the URL's ``seed``/``task`` query."""
    request = getattr(ctx, "request", None)
    if request is None:
        return STDIO_SESSION, None
    key = request.headers.get("mcp-session-id")
    if not key:
        raise SessionRequired(STATELESS)
    query = request.query_params
    return key, StartState.parse(query.get("seed"), query.get("task"))


def _tool(spec: Any) -> types.Tool:
    function = spec.schema["function"]
    return types.Tool(
        name=spec.name,
        description=function.get("description") or spec.description,
        input_schema=function["parameters"],
        annotations=types.ToolAnnotations(
            read_only_hint=spec.kind == "read", destructive_hint=spec.kind == "write", open_world_hint=False
        ),
    )


def _text(text: str, *, error: bool = False, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=error, _meta=meta
    )


def _resource(uri: str, text: str, mime: str) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=text, mime_type=mime)])


class DomainServer:
    """The handlers of the MCP server of one domain (module docstring) over its sessions."""

    def __init__(self, domain: Domain, default: StartState | None = None):
        self.domain = domain
        self.sessions = Sessions(domain, default or StartState())
        self._tools = [_tool(spec) for spec in domain.tools]
        self._info = domain_info(domain)

    def session(self, ctx: Any) -> Session:
        key, start = session_of(ctx)
        return self.sessions.get(key, start)

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._tools)

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            session = self.session(ctx)
        except (SessionRequired, StartError) as exc:
            return _text(f"Error: {exc}", error=True)
        observation = session.env.call({"name": params.name, "arguments": params.arguments or {}})
        meta = {HASH_META: session.env.state_hash()}
        return _text(observation.content, error=not observation.ok, meta=meta)

    async def list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        entries = [
            (POLICY_URI, "policy", "the policy the agent must follow", "text/markdown"),
            (
                DOMAIN_URI,
                "domain",
                "seeds, references, provenance rule and tasks of the domain",
                "application/json",
            ),
            (
                STATE_URI,
                "state",
                "this session's database as tables {table: {id: record}}",
                "application/json",
            ),
            (HASH_URI, "state-hash", "the canonical hash of this session's state", "text/plain"),
            (VIOLATIONS_URI, "violations", "policy checks this session's calls broke", "application/json"),
        ]
        return types.ListResourcesResult(
            resources=[types.Resource(uri=u, name=n, description=d, mime_type=m) for u, n, d, m in entries]
        )

    async def read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri == POLICY_URI:
            return _resource(uri, self.domain.policy, "text/markdown")
        if uri == DOMAIN_URI:
            return _resource(uri, json.dumps(self._info, ensure_ascii=False), "application/json")
        if uri not in (STATE_URI, HASH_URI, VIOLATIONS_URI):  # the rest are the session's
            known = ", ".join((POLICY_URI, DOMAIN_URI, STATE_URI, HASH_URI, VIOLATIONS_URI))
            raise MCPError(types.INVALID_PARAMS, f"unknown resource {uri!r}; resources are {known}")
        try:
            session = self.session(ctx)
        except (SessionRequired, StartError) as exc:
            raise MCPError(types.INVALID_REQUEST, str(exc)) from None
        if uri == HASH_URI:
            return _resource(uri, session.env.state_hash(), "text/plain")
        if uri == VIOLATIONS_URI:
            return _resource(uri, json.dumps(session.violations()), "application/json")
        return _resource(uri, json.dumps(session.env.snapshot(), ensure_ascii=False), "application/json")

    async def list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[types.Prompt(name="policy", description=f"the {self.domain.name} policy for the agent")]
        )

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if params.name != "policy":
            raise MCPError(
                types.INVALID_PARAMS, f"unknown prompt {params.name!r}; the one prompt is 'policy'"
            )
        message = types.PromptMessage(
            role="user", content=types.TextContent(type="text", text=self.domain.policy)
        )
        return types.GetPromptResult(description=f"the {self.domain.name} policy", messages=[message])

    def server(self) -> Server:
        return Server(
            f"apigen-mt {self.domain.name}",
            instructions=f"Tools of the {self.domain.name} domain; follow the policy (prompt 'policy').",
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_read_resource=self.read_resource,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
        )


async def serve_stdio(domain: Domain, default: StartState) -> None:
    """Serves one client over stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    server = DomainServer(domain, default).server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def http_app(domain: Domain, default: StartState, host: str = "127.0.0.1") -> Any:
    """The Starlette app serving ``domain`` at ``/mcp`` (JSON responses, handshake-era sessions)."""
    server = DomainServer(domain, default).server()
    return without_event_stream(server.streamable_http_app(json_response=True, host=host))


def without_event_stream(app: Any) -> Any:
    """``app`` answering a GET (the stream a client opens for messages the server starts) with 405, which
    the streamable-HTTP transport allows a server that sends none: this one never does, and every
    client session would otherwise hold one more connection and one more server task open."""
    from starlette.responses import Response

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            await Response(status_code=405, headers={"Allow": "POST, DELETE"})(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped
