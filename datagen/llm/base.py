"""What every backend shares: admission (:mod:`datagen.llm.admission`: what the engine can absorb,
in priority order, under the spec's concurrency ceiling), token accounting, and reading raw model
text into a :class:`Choice` through the model's tool-call format."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from datagen.llm.admission import Admission, current_priority
from datagen.llm.config import ModelSpec
from datagen.llm.formats import ToolFormat
from datagen.llm.types import ChatResult, Choice, Message, ParseError, ToolSchema, Usage

logger = logging.getLogger(__name__)


class LLMRequestError(RuntimeError):
    """A request failed for good (retries exhausted, or the server rejected it)."""


class ModelUnavailableError(LLMRequestError):
    """The model cannot be reached at all: its server stays down after the runtime's retries, or its
    engine died. Not the fault of the request being served, so runs stop (every job in flight is left
    unrecorded) instead of recording failures, and ``--resume`` continues once the model is back."""


def choice_from_text(
    raw: str,
    engine_finish_reason: str | None,
    fmt: ToolFormat,
    tools: list[ToolSchema] | None,
) -> Choice:
    """Decode one completion. Text is read as tool calls only when tools were offered, so a user
    simulator's bracketed prose is never taken for a call. (With tools and a JSON schema together,
    the schema constrains the call itself, e.g. an xLAM list, and the calls are read as usual.)"""
    finish_reason = "length" if engine_finish_reason == "length" else "stop"
    if not tools:
        return Choice(content=raw.strip(), tool_calls=[], raw=raw, finish_reason=finish_reason)
    parsed = fmt.parse(raw, tools)
    if parsed.calls and parsed.error is None:
        finish_reason = "tool_calls"
    return Choice(
        content=parsed.content,
        tool_calls=parsed.calls,
        raw=raw,
        finish_reason=finish_reason,
        parse_error=parsed.error,
    )


def context_overflow_result(prompt_tokens: int, max_model_len: int, n: int, model: str) -> ChatResult:
    """The answer to a prompt that no longer fits the context: data, not an exception, so that one
    over-long dialogue ends as a failed episode instead of stopping a whole run."""
    error = ParseError(
        "context_overflow",
        f"the prompt has {prompt_tokens} tokens but the model's context is {max_model_len}; "
        "shorten the conversation or raise max_model_len",
        "",
    )
    choice = Choice(content="", tool_calls=[], raw="", finish_reason="error", parse_error=error)
    return ChatResult(choices=[choice] * n, usage=Usage(prompt_tokens=prompt_tokens), model=model)


class BaseChatModel(ABC):
    """The ChatModel protocol with admission per model (one per engine) and cumulative usage."""

    def __init__(self, spec: ModelSpec, tool_format: ToolFormat) -> None:
        self.spec = spec
        self.name = spec.label
        self.format = tool_format
        self.usage = Usage()  # everything this model has consumed so far
        # Backends that know their engine's limits hand them over with admission.set_limits().
        self.admission = Admission(spec.max_concurrency)

    def prompt_ids(self, messages: list[Message], tools: list[ToolSchema] | None) -> Sequence[int] | None:
        """The prompt's token ids, where the backend renders them itself (for the prefill and KV
        budgets and the prefix estimate); None where the server does."""
        return None

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSchema] | None = None,
        n: int = 1,
        temperature: float = 0.7,
        top_p: float = 1.0,
        max_tokens: int = 512,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatResult:
        if n < 1 or max_tokens < 1:
            raise ValueError(f"expected n >= 1 and max_tokens >= 1, found n={n}, max_tokens={max_tokens}")
        if not messages:
            raise ValueError("expected at least one message, found none")
        ticket = self.admission.ticket(
            self.prompt_ids(messages, tools or None), max_tokens=max_tokens, n=n, priority=current_priority()
        )
        async with self.admission.slot(ticket):
            result = await self._chat(
                messages,
                tools=tools or None,
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_tokens,
                seed=seed,
                json_schema=json_schema,
            )
        self.usage.add(result.usage)
        self.admission.counts.cached_tokens += result.usage.cached_prompt_tokens
        return result

    @abstractmethod
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
    ) -> ChatResult: ...

    async def aclose(self) -> None:  # noqa: B027 - backends without resources need nothing
        """Release the engine, process or connections behind this model."""

    async def __aenter__(self) -> BaseChatModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
