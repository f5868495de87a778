"""Serve a trained (merged) model directory through the toolkit's vLLM backend and ask it the first
turn of a conversation with its tools; prints one JSON line with the tool format the runtime read
from the directory, the raw text and the calls it parsed.

Run as a script by tests/test_training_sft.py: vLLM engines must be built under ``__main__``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


async def ask(model_dir: str, conversation: dict) -> dict:
    from datagen.llm import ModelSpec, build_chat_model

    spec = ModelSpec(model=model_dir, backend="vllm", max_model_len=4096, engine_args={"enforce_eager": True})
    model = build_chat_model(spec)
    try:
        result = await model.chat(
            conversation["messages"][:1], tools=conversation["tools"], max_tokens=128, temperature=0.0
        )
    finally:
        await model.aclose()
    choice = result.first
    return {
        "tool_format": model.format.name,
        "generated_tokens": result.usage.completion_tokens,
        "text": choice.raw,
        "calls": [call["name"] for call in choice.tool_calls],
        "parse_error": None if choice.parse_error is None else choice.parse_error.kind,
    }


def main(model_dir: str, conversation_file: str) -> int:
    conversation = json.loads(Path(conversation_file).read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(ask(model_dir, conversation))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
