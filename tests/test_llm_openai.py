"""The OpenAI-compatible HTTP backend: retries and load spreading against a small local HTTP server
(fast), and the real thing against a `vllm` api_server subprocess on the embedded model."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from datagen.llm import ModelSpec, build_chat_model
from datagen.llm.base import LLMRequestError
from datagen.llm.formats import get_format

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
HISTORY = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
    },
    {"role": "tool", "content": '{"temperature_c": 21}'},
    {"role": "user", "content": "Thanks. And in Rome?"},
]
COMPLETION = {
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>',
            },
        }
    ],
    "usage": {"prompt_tokens": 30, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 16}},
}


class _ScriptedServer(BaseHTTPRequestHandler):
    """Answers POSTs with the next status from ``statuses`` (then 200 with COMPLETION); records bodies."""

    statuses: list[int] = []
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        payload = json.dumps(COMPLETION if status == 200 else {"error": "try later"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted_server() -> Iterator[type[_ScriptedServer]]:
    handler = type("Handler", (_ScriptedServer,), {"statuses": [], "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield handler
    server.shutdown()
    server.server_close()


def _dead_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # closed again: connections are refused


def test_retries_on_503_and_429_then_parses_the_hermes_reply(scripted_server) -> None:
    scripted_server.statuses = [503, 429]
    spec = ModelSpec(
        model="m", backend="openai", tool_format="hermes", base_urls=[scripted_server.url], max_retries=3
    )

    async def run():
        model = build_chat_model(spec)
        try:
            return await model.chat(HISTORY, tools=TOOLS, max_tokens=32, seed=5), model.usage
        finally:
            await model.aclose()

    result, usage = asyncio.run(run())
    assert len(scripted_server.bodies) == 3
    assert result.first.tool_calls == [{"name": "get_weather", "arguments": {"city": "Rome"}}]
    assert result.first.finish_reason == "tool_calls"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens) == (30, 12, 16)
    body = scripted_server.bodies[0]
    assert "tools" not in body and body["seed"] == 5 and body["max_tokens"] == 32
    assert "<tools>" in body["messages"][0]["content"]
    assert get_format("hermes").render_calls([HISTORY[1]["tool_calls"][0]]) in body["messages"][2]["content"]


def test_openai_format_sends_tools_and_calls_as_fields(scripted_server) -> None:
    spec = ModelSpec(model="m", backend="openai", tool_format="openai", base_urls=[scripted_server.url])

    async def run():
        model = build_chat_model(spec)
        try:
            await model.chat(HISTORY, tools=TOOLS, json_schema={"type": "object"})
        finally:
            await model.aclose()

    asyncio.run(run())
    body = scripted_server.bodies[0]
    assert body["tools"] == TOOLS
    call = body["messages"][1]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert body["messages"][2]["tool_call_id"] == call["id"]
    assert body["response_format"]["type"] == "json_schema"


def test_client_errors_fail_at_once_and_exhausted_retries_raise(scripted_server) -> None:
    scripted_server.statuses = [400]
    spec = ModelSpec(model="m", backend="openai", base_urls=[scripted_server.url], max_retries=3)

    async def ask(model_spec: ModelSpec):
        model = build_chat_model(model_spec)
        try:
            return await model.chat([{"role": "user", "content": "hi"}])
        finally:
            await model.aclose()

    with pytest.raises(LLMRequestError, match="HTTP 400"):
        asyncio.run(ask(spec))
    assert len(scripted_server.bodies) == 1
    with pytest.raises(LLMRequestError, match="after 2 attempts"):
        asyncio.run(ask(ModelSpec(model="m", backend="openai", base_urls=[_dead_url()], max_retries=1)))


def test_requests_move_to_a_live_server_when_one_is_down(scripted_server) -> None:
    spec = ModelSpec(model="m", backend="openai", base_urls=[_dead_url(), scripted_server.url], max_retries=2)

    async def run():
        model = build_chat_model(spec)
        try:
            return await asyncio.gather(
                *(model.chat([{"role": "user", "content": f"q{i}"}]) for i in range(6))
            )
        finally:
            await model.aclose()

    results = asyncio.run(run())
    assert len(results) == 6
    assert len(scripted_server.bodies) == 6


def test_missing_api_key_is_reported() -> None:
    spec = ModelSpec(
        model="m", backend="openai", base_urls=["http://x/v1"], api_key_env="APIGEN_MT_TEST_NO_SUCH_KEY"
    )
    with pytest.raises(ValueError, match="APIGEN_MT_TEST_NO_SUCH_KEY"):
        build_chat_model(spec)


# ----------------------------------------------------------------------------- against a real server


def _server_spec(base_url: str, tool_format: str) -> ModelSpec:
    return ModelSpec(
        model="embedded", backend="openai", tool_format=tool_format, base_urls=[base_url], timeout_s=300
    )


@pytest.mark.vllm
def test_real_server_batched_chat_and_usage(vllm_server: str) -> None:
    async def run():
        model = build_chat_model(_server_spec(vllm_server, "hermes"))
        try:
            results = await asyncio.gather(
                *(
                    model.chat([{"role": "user", "content": f"Count to {i}."}], max_tokens=10, seed=i)
                    for i in range(4)
                )
            )
            return results, model.usage
        finally:
            await model.aclose()

    results, usage = asyncio.run(run())
    assert all(r.first.raw and 0 < r.usage.completion_tokens <= 10 for r in results)
    assert usage.completion_tokens == sum(r.usage.completion_tokens for r in results)


@pytest.mark.vllm
@pytest.mark.parametrize("tool_format", ["openai", "hermes", "xlam"])
def test_real_server_tool_history_round_trip(vllm_server: str, tool_format: str) -> None:
    async def run():
        model = build_chat_model(_server_spec(vllm_server, tool_format))
        try:
            return await model.chat(HISTORY, tools=TOOLS, n=2, max_tokens=40, temperature=0.8, seed=1)
        finally:
            await model.aclose()

    result = asyncio.run(run())
    assert len(result.choices) == 2
    fmt = get_format(tool_format)
    for choice in result.choices:
        if tool_format != "openai":
            assert (choice.content, choice.tool_calls, choice.parse_error) == tuple(
                fmt.parse(choice.raw, TOOLS)
            )
        for call in choice.tool_calls:
            assert isinstance(call["arguments"], dict)


@pytest.mark.vllm
def test_real_server_json_schema_output_validates(vllm_server: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 16}, "rain": {"type": "boolean"}},
        "required": ["city", "rain"],
        "additionalProperties": False,
    }

    async def run():
        model = build_chat_model(_server_spec(vllm_server, "hermes"))
        try:
            return await model.chat(
                [{"role": "user", "content": "Is it raining in Oslo? Answer as JSON."}],
                json_schema=schema,
                max_tokens=60,
                seed=2,
            )
        finally:
            await model.aclose()

    result = asyncio.run(run())
    jsonschema.validate(json.loads(result.first.content), schema)
