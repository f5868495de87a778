"""What an engine itself reports it did: tokens generated and prefilled, prefix-cache hits, requests
running and waiting, KV use. The live funnel shows rates from it and the throughput benchmark counts
generated tokens with it (not the completions of finished requests, which miss the work in flight).

- In-process vLLM: a stat logger handed to ``AsyncLLM`` (vLLM's own ``StatLoggerBase`` interface)
  adds every scheduler and iteration record to an :class:`EngineStats`.
- A vLLM server: its Prometheus ``/metrics`` (``vllm:generation_tokens_total`` and friends), polled
  by a background thread so a slow server never stalls the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol

log = logging.getLogger(__name__)

RATE_WINDOW_S = 10.0  # the live rates are averages over this many seconds
SERVER_POLL_S = 2.0


@dataclass(frozen=True)
class EngineCounters:
    """Totals since the engine started (counters) and the state at the last record (gauges)."""

    at: float = 0.0
    generation_tokens: int = 0
    prompt_tokens: int = 0  # prompt tokens of every prefilled request
    prompt_cached_tokens: int = 0  # of which the prefix cache supplied
    preemptions: int = 0
    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0  # 0..1

    def since(self, earlier: EngineCounters) -> EngineRates:
        seconds = max(self.at - earlier.at, 1e-9)
        prompt = self.prompt_tokens - earlier.prompt_tokens
        cached = self.prompt_cached_tokens - earlier.prompt_cached_tokens
        return EngineRates(
            seconds=seconds,
            generation_tokens=self.generation_tokens - earlier.generation_tokens,
            prompt_tokens=prompt,
            prompt_cached_tokens=cached,
            preemptions=self.preemptions - earlier.preemptions,
            running=self.running,
            waiting=self.waiting,
            kv_usage=self.kv_usage,
        )


@dataclass(frozen=True)
class EngineRates:
    """What an engine did between two :class:`EngineCounters`."""

    seconds: float
    generation_tokens: int
    prompt_tokens: int
    prompt_cached_tokens: int
    preemptions: int
    running: int
    waiting: int
    kv_usage: float

    @property
    def generation_per_s(self) -> float:
        return self.generation_tokens / self.seconds

    @property
    def prompt_per_s(self) -> float:
        return self.prompt_tokens / self.seconds

    @property
    def computed_prompt_per_s(self) -> float:
        return (self.prompt_tokens - self.prompt_cached_tokens) / self.seconds

    @property
    def hit_rate(self) -> float:
        return self.prompt_cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def line(self) -> str:
        return (
            f"engine: prompt {self.prompt_per_s:.0f} tok/s ({self.hit_rate:.0%} cached), "
            f"generation {self.generation_per_s:.0f} tok/s, running {self.running} waiting {self.waiting}, "
            f"KV {self.kv_usage:.0%}"
        )


class StatsSource(Protocol):
    def snapshot(self) -> EngineCounters: ...

    def rates(self, window_s: float = RATE_WINDOW_S) -> EngineRates | None: ...


class _History:
    """Counters kept about once a second for :meth:`rates`."""

    def __init__(self) -> None:
        self._points: deque[EngineCounters] = deque(maxlen=600)

    def add(self, counters: EngineCounters) -> None:
        if not self._points or counters.at - self._points[-1].at >= 1.0:
            self._points.append(counters)

    def rates(self, now: EngineCounters, window_s: float) -> EngineRates | None:
        earlier = next((p for p in self._points if now.at - p.at <= window_s), None)
        if earlier is None or now.at - earlier.at < 0.5:
            earlier = self._points[0] if self._points else None
        if earlier is None or now.at <= earlier.at:
            return None
        return now.since(earlier)


class EngineStats:
    """Counters of one in-process engine, fed by :class:`VLLMStatLogger` (engine records arrive on
    the event loop's thread, in vLLM's output handler). ``steps`` (admission's step model) gets every
    step: the requests that were running, the time since the step before, the tokens generated."""

    def __init__(self, steps: Any = None) -> None:
        self.steps = steps
        self._step_at: float | None = None  # when the last step's outputs arrived
        self._now = EngineCounters(at=time.monotonic())
        self._history = _History()
        self._history.add(self._now)

    def snapshot(self) -> EngineCounters:
        return replace(self._now, at=time.monotonic())

    def rates(self, window_s: float = RATE_WINDOW_S) -> EngineRates | None:
        return self._history.rates(self.snapshot(), window_s)

    def record(self, scheduler_stats: Any, iteration_stats: Any) -> None:
        now = self._now
        changes: dict[str, Any] = {"at": time.monotonic()}
        if iteration_stats is not None:
            prompt = iteration_stats.prompt_token_stats
            changes["generation_tokens"] = now.generation_tokens + iteration_stats.num_generation_tokens
            changes["prompt_tokens"] = now.prompt_tokens + prompt.total
            changes["prompt_cached_tokens"] = now.prompt_cached_tokens + prompt.cached_tokens
            changes["preemptions"] = now.preemptions + iteration_stats.num_preempted_reqs
            at = iteration_stats.iteration_timestamp
            if self.steps is not None and self._step_at is not None and now.running:  # not idle since
                self.steps.observe(now.running, at - self._step_at, iteration_stats.num_generation_tokens)
            self._step_at = at
        if scheduler_stats is not None:
            changes["running"] = scheduler_stats.num_running_reqs
            changes["waiting"] = scheduler_stats.num_waiting_reqs + scheduler_stats.num_skipped_waiting_reqs
            changes["kv_usage"] = scheduler_stats.kv_cache_usage
        self._now = replace(now, **changes)
        self._history.add(self._now)


def vllm_stat_logger_factory(stats: EngineStats) -> Any:
    """A per-engine ``StatLoggerFactory`` for ``AsyncLLM(stat_loggers=[...])`` feeding ``stats``."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class VLLMStatLogger(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            self.engine_index = engine_index

        def record(
            self,
            scheduler_stats: Any,
            iteration_stats: Any,
            mm_cache_stats: Any = None,
            engine_idx: int = 0,
        ) -> None:
            stats.record(scheduler_stats, iteration_stats)

        def log_engine_initialized(self) -> None:
            pass

    return VLLMStatLogger


# Prometheus series of a vLLM server -> EngineCounters fields (summed over its engines).
_SERVER_SERIES = {
    "vllm:generation_tokens": "generation_tokens",
    "vllm:prompt_tokens": "prompt_tokens",
    "vllm:prompt_tokens_cached": "prompt_cached_tokens",
    "vllm:num_preemptions": "preemptions",
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv_usage",
}


def parse_server_metrics(text: str) -> tuple[EngineCounters, dict[str, str]]:
    """A vLLM server's ``/metrics`` page as counters, and the labels of its ``vllm:cache_config_info``
    (``num_gpu_blocks``, ``block_size``, ...; empty when the server does not publish it)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    cache_info: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "vllm:cache_config_info":
            cache_info = dict(family.samples[0].labels) if family.samples else {}
            continue
        field_name = _SERVER_SERIES.get(family.name)
        if field_name is None:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket", "_sum", "_count")):
                continue
            totals[field_name] = totals.get(field_name, 0.0) + sample.value
    values: dict[str, Any] = {k: (v if k == "kv_usage" else int(v)) for k, v in totals.items()}
    return EngineCounters(at=time.monotonic(), **values), cache_info


class ServerStats:
    """The summed ``/metrics`` of vLLM servers, polled every ``SERVER_POLL_S`` by a daemon thread."""

    def __init__(self, base_urls: list[str]) -> None:
        from apigen_rules.redact import redact_logs, redact_url, split_userinfo

        redact_logs("httpx")  # httpx logs each request URL, a query's `?api_key=` included

        # A `user:password@` in a base URL travels as basic auth: no request URL, log line or error
        # of the poller holds it; `metrics_urls` are the URLs as people may see them.
        self._targets = [
            split_userinfo(url.removesuffix("/v1").rstrip("/") + "/metrics") for url in base_urls
        ]
        self.metrics_urls = [redact_url(url) for url, _ in self._targets]
        self._now: EngineCounters | None = None
        self._history = _History()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="apigen-mt-server-metrics", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        """Until closed; a server without a ``/metrics`` page (a hosted API) is asked once."""
        import httpx

        from apigen_rules.redact import redact_text

        while not self._stop.is_set():
            try:
                parts = []
                for url, auth in self._targets:
                    response = httpx.get(url, auth=auth, timeout=2.0)
                    response.raise_for_status()
                    parts.append(parse_server_metrics(response.text)[0])
            except (httpx.HTTPError, ValueError) as exc:
                if self._now is None:
                    log.info("no engine figures from %s (%s)", self.metrics_urls, redact_text(str(exc)))
                    return
            else:
                self._now = _sum_counters(parts)
                self._history.add(self._now)
            self._stop.wait(SERVER_POLL_S)

    def snapshot(self) -> EngineCounters:
        return self._now or EngineCounters(at=time.monotonic())

    def rates(self, window_s: float = RATE_WINDOW_S) -> EngineRates | None:
        return self._history.rates(self._now, window_s) if self._now is not None else None

    def close(self) -> None:
        self._stop.set()


def _sum_counters(parts: list[EngineCounters]) -> EngineCounters:
    total = EngineCounters(at=time.monotonic())
    for part in parts:
        total = replace(
            total,
            generation_tokens=total.generation_tokens + part.generation_tokens,
            prompt_tokens=total.prompt_tokens + part.prompt_tokens,
            prompt_cached_tokens=total.prompt_cached_tokens + part.prompt_cached_tokens,
            preemptions=total.preemptions + part.preemptions,
            running=total.running + part.running,
            waiting=total.waiting + part.waiting,
            kv_usage=max(total.kv_usage, part.kv_usage),
        )
    return total


def stats_source(model: Any) -> StatsSource | None:
    """Where ``model``'s engine figures come from: its in-process engine's stats, the ``/metrics`` of
    the vLLM servers behind an openai-backend spec, or None (transformers, test doubles)."""
    stats = getattr(model, "engine_stats", None)
    if stats is not None:
        return stats
    spec = getattr(model, "spec", None)
    if spec is not None and getattr(spec, "backend", None) == "openai" and spec.base_urls:
        source = ServerStats(list(spec.base_urls))
        model.engine_stats = source  # one poller per model
        return source
    return None
