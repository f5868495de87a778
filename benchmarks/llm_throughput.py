"""Throughput of the LLM runtime (in-process vLLM backend) against vLLM's raw offline batch call.

    .venv/bin/python benchmarks/llm_throughput.py

The runtime answers ``c`` concurrent ``chat`` calls for c in 1, 8, 32, 64; then the same 64 prompts go
through ``vllm.LLM.chat`` as one batch. Every request has its own seed, so both paths sample the
same tokens and do the same work. The last line compares concurrency 64 with the raw batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass

TARGET_RATIO = 0.85
CONCURRENCIES = (1, 8, 32, 64)
TOPICS = [
    "a lighthouse", "a lost key", "the first snow", "a robot gardener", "an old map", "a city at night",
    "a talking cat", "a desert well", "a broken clock", "a paper boat", "a mountain train", "a secret door",
    "a jazz band", "a quiet library", "a storm at sea", "a tiny dragon",
]  # fmt: skip


@dataclass
class Measurement:
    label: str
    requests: int
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds


def conversations(count: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Tell me a long story about {TOPICS[i % len(TOPICS)]} (story {i})."}]
        for i in range(count)
    ]


async def measure_runtime(max_tokens: int, temperature: float) -> tuple[list[Measurement], float]:
    from datagen.llm import ModelSpec, build_chat_model

    started = time.monotonic()
    model = build_chat_model(ModelSpec(model="embedded", backend="vllm", max_concurrency=max(CONCURRENCIES)))
    start_s = time.monotonic() - started
    measurements = []
    try:
        await asyncio.gather(
            *(model.chat(c, max_tokens=8, seed=i) for i, c in enumerate(conversations(64)))
        )  # warm-up
        for concurrency in CONCURRENCIES:
            prompts = conversations(concurrency)
            began = time.monotonic()
            results = await asyncio.gather(
                *(
                    model.chat(messages, max_tokens=max_tokens, temperature=temperature, seed=i)
                    for i, messages in enumerate(prompts)
                )
            )
            seconds = time.monotonic() - began
            tokens = sum(result.usage.completion_tokens for result in results)
            measurements.append(Measurement(f"runtime c={concurrency}", concurrency, tokens, seconds))
    finally:
        await model.aclose()
    return measurements, start_s


def measure_raw(count: int, max_tokens: int, temperature: float) -> Measurement:
    from vllm import LLM, SamplingParams

    from datagen.llm.embedded import embedded_model_path
    from datagen.llm.vllm_backend import platform_engine_settings

    llm = LLM(
        model=str(embedded_model_path()),
        max_model_len=8192,
        enable_prefix_caching=True,
        disable_log_stats=True,
        # the runtime's own settings (KV cache included): same work, same scheduler
        **platform_engine_settings(8192, model=str(embedded_model_path()), concurrency=count),
    )
    prompts = conversations(count)
    llm.chat(prompts, SamplingParams(max_tokens=8, seed=0), use_tqdm=False)  # warm-up
    params = [SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=i) for i in range(count)]
    began = time.monotonic()
    outputs = llm.chat(prompts, params, use_tqdm=False)
    seconds = time.monotonic() - began
    tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    del llm  # the engine process exits with it
    return Measurement(f"raw LLM.chat batch={count}", count, tokens, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()

    runtime, start_s = asyncio.run(measure_runtime(args.max_tokens, args.temperature))
    raw = measure_raw(max(CONCURRENCIES), args.max_tokens, args.temperature)

    print(f"engine start (runtime): {start_s:.1f}s   cpus: {os.cpu_count()}   max_tokens: {args.max_tokens}")
    print(f"{'path':<26}{'requests':>9}{'tokens':>9}{'seconds':>9}{'tokens/s':>10}")
    for m in [*runtime, raw]:
        print(f"{m.label:<26}{m.requests:>9}{m.completion_tokens:>9}{m.seconds:>9.1f}{m.tokens_per_s:>10.1f}")
    ratio = runtime[-1].tokens_per_s / raw.tokens_per_s
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"RESULT llm_throughput_c64_vs_raw: {ratio:.3f} (target >= {TARGET_RATIO}) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
