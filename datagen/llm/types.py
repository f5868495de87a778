"""The data that crosses the LLM runtime's boundary, whatever the backend.

Messages are OpenAI chat format (``role``, ``content``, assistant ``tool_calls``, ``tool`` messages).
Inside the toolkit a tool call is ``{"name": str, "arguments": dict}``; tool-call *formats*
(Hermes, xLAM, Llama-3, Python syntax, OpenAI native) exist only at the model edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, runtime_checkable


class ToolCall(TypedDict):
    name: str
    arguments: dict[str, Any]


Message = dict[str, Any]
ToolSchema = dict[str, Any]  # OpenAI function-tool schema: {"type": "function", "function": {...}}


@dataclass
class ParseError:
    """Why a model output could not be read as tool calls; kept as data, never raised."""

    kind: str  # e.g. "invalid_json", "unknown_tool", "bad_arguments", "truncated"
    message: str
    raw: str


@dataclass
class Choice:
    """One sampled completion, already decoded by the model's tool-call format."""

    content: str  # assistant text with the tool-call markup removed
    tool_calls: list[ToolCall]
    raw: str  # exactly what the model produced
    finish_reason: str  # "stop", "length", "tool_calls", "error"
    parse_error: ParseError | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_prompt_tokens += other.cached_prompt_tokens


@dataclass
class ChatResult:
    choices: list[Choice]
    usage: Usage = field(default_factory=Usage)
    model: str = ""

    @property
    def first(self) -> Choice:
        return self.choices[0]


@runtime_checkable
class ChatModel(Protocol):
    """One async chat interface over every backend (vLLM in-process, OpenAI-compatible HTTP, transformers)."""

    name: str

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
    ) -> ChatResult: ...

    async def aclose(self) -> None: ...
