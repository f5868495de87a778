"""The in-process vLLM backend gives the engine its prompts through the engine's own renderer (vLLM
0.32's supported input path), so neither the engine start nor a request logs vLLM's deprecation of raw
``{"prompt_token_ids": ...}`` prompts, and the engine runs on exactly the token ids we rendered.

Run in a fresh process on the real embedded model: vLLM logs each deprecation once per process and
to its own handlers, so only a process of its own shows whether the warning comes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_runs import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

PROBE = """
import asyncio, json
from datagen.llm import ModelSpec, build_chat_model

spec = ModelSpec(model="embedded", backend="vllm", max_concurrency=4, engine_args={"enforce_eager": True})
model = build_chat_model(spec)
seen = []
generate = model._engine.generate

async def recording_generate(prompt, *args, **kwargs):
    async for output in generate(prompt, *args, **kwargs):
        seen.append({"input": list(prompt["prompt_token_ids"]), "engine": list(output.prompt_token_ids)})
        yield output

model._engine.generate = recording_generate
model.sent = []
messages = [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "A colour?"}]
loop = asyncio.new_event_loop()
result = loop.run_until_complete(model.chat(messages, max_tokens=4, temperature=0.0))
loop.run_until_complete(model.aclose())
rendered = model.prompt_ids(messages, None)
print("PROBE " + json.dumps({"sent": [ids for ids, _ in model.sent], "seen": seen, "rendered": rendered,
                              "completion_tokens": result.usage.completion_tokens}))
"""

DEPRECATIONS = ("Renderer.render_cmpl", "raw prompts", "EngineCoreRequest to AsyncLLM.generate")


def test_no_deprecated_input_path_and_token_ids_exact(embedded_model):
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    logs = done.stdout + done.stderr
    assert not [line for line in logs.splitlines() if any(d in line for d in DEPRECATIONS)], logs[-4000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    found = json.loads(line.removeprefix("PROBE "))
    assert found["completion_tokens"] > 0
    assert found["sent"] == [found["rendered"]]
    assert found["seen"] and all(s["input"] == s["engine"] == found["rendered"] for s in found["seen"])
