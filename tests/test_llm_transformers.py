"""The transformers fallback backend on the real embedded model."""

from __future__ import annotations

import asyncio

import pytest

from datagen.llm import ModelSpec, build_chat_model

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


@pytest.fixture
def one_torch_thread():
    """On a CPU box shared with other jobs, OpenMP spin-waiting makes 2 threads ~10x slower than 1."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_transformers_backend_samples_with_seed_tools_and_usage(embedded_model, one_torch_thread) -> None:
    async def run():
        model = build_chat_model(ModelSpec(model=str(embedded_model), backend="transformers"))
        try:
            messages = [{"role": "user", "content": "What's the weather in Oslo?"}]
            first, second = await asyncio.gather(
                model.chat(messages, tools=TOOLS, n=2, max_tokens=6, temperature=1.0, seed=3),
                model.chat(messages, tools=TOOLS, n=2, max_tokens=6, temperature=1.0, seed=3),
            )
            with pytest.raises(ValueError, match="JSON schema"):
                await model.chat(messages, json_schema={"type": "object"})
            return first, second, model.usage
        finally:
            await model.aclose()

    first, second, usage = asyncio.run(run())
    assert len(first.choices) == 2
    assert [c.raw for c in first.choices] == [c.raw for c in second.choices]
    assert all(c.finish_reason in {"stop", "length", "tool_calls"} for c in first.choices)
    assert 0 < first.usage.completion_tokens <= 12
    assert first.usage.prompt_tokens > 100  # the tools block is in the prompt
    assert usage.completion_tokens == first.usage.completion_tokens + second.usage.completion_tokens
