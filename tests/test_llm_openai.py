"""The OpenAI-compatible HTTP backend: retries and load spreading against a small local HTTP server
(fast), and the real thing against a `vllm` api_server subprocess on the embedded model."""

from __future__ import annotations

import asyncio
import json
import random
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
    """Answers POSTs with the next status from ``statuses`` (then 200 with COMPLETION), an error's
    text being ``error``; records bodies and headers; with ``hold`` set, answers once ``release`` is."""

    statuses: list[int] = []
    bodies: list[dict] = []
    seen_headers: list[dict] = []
    error = "try later"
    hold = False
    release: threading.Event

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        type(self).seen_headers.append({k.lower(): v for k, v in self.headers.items()})
        if type(self).hold:
            type(self).release.wait(timeout=30)
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        error = {"error": {"message": type(self).error, "type": "BadRequestError", "code": status}}
        payload = json.dumps(COMPLETION if status == 200 else error).encode()
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
    handler = type("Handler", (_ScriptedServer,), {"statuses": [], "bodies": [], "seen_headers": []})
    handler.release = threading.Event()
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


def _ask(spec: ModelSpec, conversations: list[list[dict]], **chat: object) -> list:
    """Every conversation's request at once through one model; the results in order."""

    async def run():
        model = build_chat_model(spec)
        try:
            return await asyncio.gather(*(model.chat(c, **chat) for c in conversations))
        finally:
            await model.aclose()

    return asyncio.run(run())


def _conversation(task: int, turns: int) -> list[dict]:
    """A dialogue's messages after ``turns`` user turns (the opening is the same at every turn)."""
    messages = [{"role": "system", "content": "You are the agent."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"task {task}, turn {turn}"})
        messages.append({"role": "assistant", "content": f"answer {turn}"})
    return messages[:-1]


def _servers(factory, count: int) -> list[type[_ScriptedServer]]:
    return [factory() for _ in range(count)]


@pytest.fixture
def server_factory():
    """Makes scripted servers on loopback; all are stopped at the end of the test."""
    started = []

    def make() -> type[_ScriptedServer]:
        handler = type("Handler", (_ScriptedServer,), {"statuses": [], "bodies": [], "seen_headers": []})
        handler.release = threading.Event()
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        handler.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        started.append((server, handler))
        return handler

    yield make
    for server, handler in started:
        handler.release.set()
        server.shutdown()
        server.server_close()


def test_every_turn_of_a_dialogue_goes_to_the_same_server(server_factory) -> None:
    servers = _servers(server_factory, 3)
    spec = ModelSpec(model="m", backend="openai", tool_format="hermes", base_urls=[s.url for s in servers])
    order = list(range(12))

    async def run():  # one model; each round is the next turn of all 12 dialogues, in another order
        model = build_chat_model(spec)
        try:
            for turns in (1, 2, 3):
                random.Random(turns).shuffle(order)
                await asyncio.gather(*(model.chat(_conversation(t, turns), max_tokens=8) for t in order))
        finally:
            await model.aclose()

    asyncio.run(run())
    where = {}
    for index, server in enumerate(servers):
        for body in server.bodies:
            task = body["messages"][1]["content"].split(",")[0]
            where.setdefault(task, set()).add(index)
    assert len(where) == 12 and all(len(places) == 1 for places in where.values()), where
    assert len({next(iter(places)) for places in where.values()}) > 1  # dialogues spread over servers


def test_a_busy_home_server_passes_new_requests_to_the_least_busy_one(server_factory) -> None:
    servers = _servers(server_factory, 2)
    for server in servers:
        server.hold = True  # answer nothing until released, so requests stay in flight
    spec = ModelSpec(
        model="m", backend="openai", base_urls=[s.url for s in servers], max_concurrency=8, max_retries=0
    )  # slack: max(4, 8 / 2 / 4) = 4

    async def run():
        model = build_chat_model(spec)
        try:
            tasks = [asyncio.create_task(model.chat(_conversation(0, 1), max_tokens=4)) for _ in range(6)]
            while sum(len(s.bodies) for s in servers) < 6:
                await asyncio.sleep(0.01)
            for server in servers:
                server.release.set()
            return await asyncio.gather(*tasks)
        finally:
            await model.aclose()

    results = asyncio.run(run())
    assert len(results) == 6
    # The 5th found home 4 ahead of the other server (overloaded) and went there; the 6th found the gap
    # back at 3 and stayed home.
    assert sorted(len(s.bodies) for s in servers) == [1, 5]


def test_a_failing_server_is_left_for_the_others_and_routed_around(server_factory, caplog) -> None:
    broken, healthy = _servers(server_factory, 2)
    broken.statuses = [503] * 100
    spec = ModelSpec(
        model="m", backend="openai", base_urls=[broken.url, healthy.url], max_retries=1, max_concurrency=4
    )
    conversations = [_conversation(task, 1) for task in range(8)]
    results = _ask(spec, conversations, max_tokens=8)
    assert len(results) == 8 and all(r.first.content for r in results)
    assert len(healthy.bodies) == 8
    # The dialogues whose home is the broken server tried it (2 attempts each: max_retries=1) until it
    # was marked down; none of the 8 is lost.
    assert 0 < len(broken.bodies) <= 2 * 8 and len(broken.bodies) % 2 == 0
    assert "moving to" in caplog.text


def test_a_prompt_longer_than_the_servers_context_is_a_context_overflow_result(server_factory) -> None:
    server = server_factory()
    server.statuses = [400]
    server.error = (
        "This model's maximum context length is 8192 tokens. However, your prompt contains 9001 input "
        "tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt."
    )
    spec = ModelSpec(model="m", backend="openai", base_urls=[server.url], max_retries=3)
    (result,) = _ask(spec, [HISTORY], tools=TOOLS, n=3, max_tokens=8)
    assert len(server.bodies) == 1  # not retried, not an error
    assert len(result.choices) == 3 and {c.finish_reason for c in result.choices} == {"error"}
    error = result.first.parse_error
    assert error.kind == "context_overflow" and "9001 tokens" in error.message and "8192" in error.message
    assert result.usage.prompt_tokens == 9001


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "This model's maximum context length is 8192 tokens. However, your prompt contains at least 8193 "
            "input tokens, which exceeds this limit even without any output tokens.",
            (8193, 8192, True),
        ),
        (
            "This model's maximum context length is 4096 tokens. However, your prompt contains 90000 characters "
            "(more than 60000 characters, which is the upper bound for 4096 input tokens).",
            (4097, 4096, True),
        ),
        ("Input length (5000) exceeds model's maximum context length (4096).", (5000, 4096, False)),
        (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 "
            "tokens. Please reduce the length of the messages.",
            (130412, 128000, False),
        ),
        (
            "The input (9000 tokens) is longer than the model's context length (8192 tokens).",
            (9000, 8192, False),
        ),
        ("'max_tokens' must be at least 1, got 0.", None),
        (
            "max_tokens=9000 cannot be greater than max_model_len=8192. Please request fewer output tokens.",
            None,
        ),
    ],
)
def test_servers_words_for_a_context_overflow_are_read(text: str, expected: tuple | None) -> None:
    from datagen.llm.openai_backend import context_overflow

    found = context_overflow(text)
    assert (tuple(found) if found else None) == expected


def test_without_an_api_key_no_authorization_is_sent_even_with_openai_api_key_set(
    server_factory, monkeypatch
) -> None:
    server = server_factory()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leave-this-machine")
    monkeypatch.setenv("APIGEN_MT_TEST_KEY", "sk-for-this-server")
    _ask(ModelSpec(model="m", backend="openai", base_urls=[server.url]), [HISTORY], max_tokens=4)
    spec = ModelSpec(model="m", backend="openai", base_urls=[server.url], api_key_env="APIGEN_MT_TEST_KEY")
    _ask(spec, [HISTORY], max_tokens=4)
    assert [h.get("authorization") for h in server.seen_headers] == [None, "Bearer sk-for-this-server"]


def test_request_extras_travel_in_the_request_body(server_factory) -> None:
    """The one place backend-specific fields (e.g. vLLM's scheduling priority) join a request."""
    from datagen.llm.openai_backend import OpenAIChatModel

    server = server_factory()
    spec = ModelSpec(model="m", backend="openai", base_urls=[server.url])

    class WithPriority(OpenAIChatModel):
        def _request_extras(self) -> dict:
            return {"priority": 3}

    async def run():
        model = WithPriority(spec)
        try:
            await model.chat(HISTORY, max_tokens=4)
        finally:
            await model.aclose()

    asyncio.run(run())
    assert server.bodies[0]["priority"] == 3 and server.bodies[0]["model"] == "m"


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


@pytest.mark.vllm
def test_real_server_context_overflow_is_a_result_as_in_process(vllm_server: str) -> None:
    """vLLM's own 400 for a prompt longer than --max-model-len 8192 becomes the in-process backend's
    context_overflow result; a prompt that fits but leaves less room than max_tokens is answered."""
    too_long = [{"role": "user", "content": "word " * 9000}]
    nearly_full = [{"role": "user", "content": "word " * 8000}]

    async def run():
        model = build_chat_model(_server_spec(vllm_server, "hermes"))
        try:
            over = await model.chat(too_long, tools=TOOLS, n=2, max_tokens=8)
            fits = await model.chat(nearly_full, max_tokens=1024, temperature=0.0)
            return over, fits
        finally:
            await model.aclose()

    over, fits = asyncio.run(run())
    assert len(over.choices) == 2 and {c.finish_reason for c in over.choices} == {"error"}
    error = over.first.parse_error
    assert error.kind == "context_overflow" and "the model's context is 8192" in error.message, error
    assert over.usage.prompt_tokens > 8192
    assert fits.first.finish_reason in ("stop", "length") and fits.first.parse_error is None
    assert fits.usage.prompt_tokens + fits.usage.completion_tokens <= 8192
