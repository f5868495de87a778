"""One async chat interface over in-process vLLM, OpenAI-compatible servers and transformers.

    model = build_chat_model(ModelSpec(model="embedded", backend="vllm"))
    result = await model.chat(messages, tools=tools, max_tokens=256)
    await model.aclose()

Backends are imported only when built, so importing this package stays cheap.
"""

from __future__ import annotations

from datagen.llm.base import LLMRequestError, ModelUnavailableError
from datagen.llm.config import EMBEDDED, ModelSpec
from datagen.llm.embedded import embedded_model_path
from datagen.llm.formats import get_format
from datagen.llm.types import ChatModel, ChatResult, Choice, Message, ParseError, ToolCall, ToolSchema, Usage

__all__ = [
    "EMBEDDED",
    "ChatModel",
    "ChatResult",
    "LLMRequestError",
    "ModelUnavailableError",
    "Choice",
    "Message",
    "ModelSpec",
    "ParseError",
    "ToolCall",
    "ToolSchema",
    "Usage",
    "build_chat_model",
    "embedded_model_path",
    "get_format",
]


def build_chat_model(spec: ModelSpec) -> ChatModel:
    """The chat model a spec describes. The vllm backend starts an engine process: call this from
    code under ``if __name__ == "__main__":``."""
    if spec.backend == "vllm":
        from datagen.llm.vllm_backend import VLLMChatModel

        return VLLMChatModel(spec)
    if spec.backend == "openai":
        from datagen.llm.openai_backend import OpenAIChatModel

        return OpenAIChatModel(spec)
    if spec.backend == "transformers":
        from datagen.llm.transformers_backend import TransformersChatModel

        return TransformersChatModel(spec)
    raise ValueError(f"unknown backend {spec.backend!r}; expected vllm, openai or transformers")
