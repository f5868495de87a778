"""The engines' own figures: in-process records through vLLM's stat-logger interface, a server's
``/metrics``, and the live funnel line that shows them."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from datagen.llm.engine_stats import EngineStats, ServerStats, parse_server_metrics
from datagen.pipeline import LiveFunnel


def _iteration(generated: int, prompt: int, cached: int):
    from vllm.v1.metrics.stats import IterationStats

    stats = IterationStats()
    stats.num_generation_tokens = generated
    stats.prompt_token_stats.total = prompt
    stats.prompt_token_stats.cached_tokens = cached
    return stats


def test_engine_records_add_up_and_the_live_line_shows_their_rates():
    from vllm.v1.metrics.stats import SchedulerStats

    stats = EngineStats()
    stats.record(SchedulerStats(num_running_reqs=5, num_waiting_reqs=2, kv_cache_usage=0.5), None)
    stats.record(None, _iteration(generated=40, prompt=1000, cached=750))
    stats.record(None, _iteration(generated=60, prompt=0, cached=0))
    now = stats.snapshot()
    assert (now.generation_tokens, now.prompt_tokens, now.prompt_cached_tokens) == (100, 1000, 750)
    assert (now.running, now.waiting, now.kv_usage) == (5, 2, 0.5)
    time.sleep(0.6)
    rates = stats.rates()
    assert rates is not None and rates.generation_tokens == 100 and rates.hit_rate == 0.75
    line = LiveFunnel(enabled=False, engines=lambda: [stats]).line()
    assert "(75% cached)" in line and "running 5 waiting 2" in line and "generation" in line


def test_the_live_line_without_engine_figures_is_the_funnel_alone():
    line = LiveFunnel(enabled=False).line()
    assert line.startswith("[phase 1] proposed 0") and "engine" not in line


@pytest.mark.slow
@pytest.mark.vllm
def test_a_server_takes_request_priorities_and_reports_its_limits_and_tokens(vllm_server: str):
    from datagen.llm import ModelSpec, build_chat_model
    from datagen.llm.admission import Priority, request_priority

    async def ask() -> int:
        model = build_chat_model(ModelSpec(model="embedded", backend="openai", base_urls=[vllm_server]))
        try:
            with request_priority(Priority.PROPOSAL):  # sent as X-Vllm-Priority
                result = await model.chat([{"role": "user", "content": "Say hi."}], max_tokens=4)
            return result.usage.completion_tokens
        finally:
            await model.aclose()

    completion_tokens = asyncio.run(ask())
    metrics_url = vllm_server.removesuffix("/v1") + "/metrics"
    counters, cache_info = parse_server_metrics(httpx.get(metrics_url, timeout=10).text)
    assert counters.generation_tokens >= completion_tokens > 0 and counters.prompt_tokens > 0
    assert int(cache_info["num_gpu_blocks"]) > 0 and int(cache_info["block_size"]) > 0
    polled = ServerStats([vllm_server])
    try:
        deadline = time.monotonic() + 10
        while (
            polled.snapshot().generation_tokens < counters.generation_tokens and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert polled.snapshot().generation_tokens >= counters.generation_tokens
    finally:
        polled.close()


def test_every_step_feeds_admissions_step_model_with_the_requests_that_ran_it():
    from vllm.v1.metrics.stats import SchedulerStats

    from datagen.llm.admission import StepModel

    seen: list[tuple[int, float, int]] = []

    class Steps(StepModel):
        def observe(self, running: int, seconds: float, tokens: int) -> None:
            seen.append((running, round(seconds, 6), tokens))

    stats = EngineStats(steps=Steps())
    for at, running, generated in (
        (100.0, 3, 0),
        (100.05, 2, 3),
        (100.25, 0, 2),
        (130.0, 1, 0),
        (130.1, 1, 1),
    ):
        iteration = _iteration(generated=generated, prompt=0, cached=0)
        iteration.iteration_timestamp = at
        stats.record(SchedulerStats(num_running_reqs=running), iteration)
    # each step is credited to the requests running before it; the idle 30 s after the engine emptied
    # are not a step
    assert seen == [(3, 0.05, 3), (2, 0.2, 2), (1, 0.1, 1)]
