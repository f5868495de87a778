"""Plain transformers generation: the fallback when vLLM is not available.

``generate`` is blocking and not re-entrant, so requests run one at a time in a worker thread;
the event loop stays free for everything else. No JSON-schema constrained decoding here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from datagen.llm.base import BaseChatModel, choice_from_text, context_overflow_result
from datagen.llm.config import ModelSpec
from datagen.llm.formats import get_format
from datagen.llm.prompting import LocalPrompter
from datagen.llm.types import ChatResult, Message, ToolSchema, Usage

logger = logging.getLogger(__name__)


class TransformersChatModel(BaseChatModel):
    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_path = spec.resolved_model()
        super().__init__(spec, get_format(spec.resolved_tool_format(model_path)))
        self.model_path = model_path
        self._tokenizer = AutoTokenizer.from_pretrained(model_path)
        self._prompter = LocalPrompter(self._tokenizer, model_path, self.format)
        # bf16 matmuls are many times slower than fp32 on CPUs without AMX.
        dtype = "auto" if torch.cuda.is_available() else torch.float32
        self._model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        if torch.cuda.is_available():
            self._model.to("cuda")
        self._model.eval()
        self._serial = asyncio.Lock()

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
        if json_schema is not None:
            raise ValueError(
                "the transformers backend cannot constrain output to a JSON schema; use backend vllm or openai"
            )
        prompt_ids = self._prompter.render_ids(messages, tools)
        room = self.spec.max_model_len - len(prompt_ids)
        if room < 1:
            return context_overflow_result(len(prompt_ids), self.spec.max_model_len, n, self.name)
        async with self._serial:
            completions = await asyncio.to_thread(
                self._generate, prompt_ids, n, temperature, top_p, min(max_tokens, room), seed
            )
        choices = [choice_from_text(text, finish, self.format, tools) for text, finish, _ in completions]
        usage = Usage(
            prompt_tokens=len(prompt_ids), completion_tokens=sum(count for _, _, count in completions)
        )
        return ChatResult(choices=choices, usage=usage, model=self.name)

    def _generate(
        self,
        prompt_ids: list[int],
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int | None,
    ) -> list[tuple[str, str, int]]:
        """(text, finish reason, completion tokens) per sample."""
        import torch

        if seed is not None:
            torch.manual_seed(seed)
        sampling = temperature > 0
        inputs = torch.tensor([prompt_ids], device=self._model.device)
        eos_ids = self._eos_ids()
        with torch.inference_mode():
            output = self._model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=max_tokens,
                do_sample=sampling,
                temperature=temperature if sampling else None,
                top_p=top_p if sampling else None,
                top_k=None,
                num_return_sequences=n,
                eos_token_id=eos_ids,
                pad_token_id=self._tokenizer.pad_token_id
                if self._tokenizer.pad_token_id is not None
                else eos_ids[0],
            )
        completions = []
        for row in output[:, len(prompt_ids) :].tolist():
            stop_at = next((i for i, token in enumerate(row) if token in eos_ids), None)
            tokens = row if stop_at is None else row[:stop_at]
            finish = "length" if stop_at is None else "stop"
            completions.append(
                (
                    self._tokenizer.decode(tokens, skip_special_tokens=True),
                    finish,
                    len(tokens) + (stop_at is not None),
                )
            )
        return completions

    def _eos_ids(self) -> list[int]:
        configured = self._model.generation_config.eos_token_id
        if configured is None:
            configured = self._tokenizer.eos_token_id
        return list(configured) if isinstance(configured, (list, tuple)) else [configured]
