"""Turn toolkit messages into what a given model and tool-call format expect.

Toolkit messages are OpenAI chat format; assistant ``tool_calls`` may come either as OpenAI objects
(``{"id", "type": "function", "function": {"name", "arguments": "<json>"}}``) or as toolkit calls
(``{"name", "arguments": {...}}``). Three ways to hand them to a model:

- structured (``openai`` format): OpenAI objects with JSON-string arguments and ``tool_call_id``s;
  tools go in the API's ``tools`` field.
- template (the format is the one the chat template renders, e.g. ``hermes`` for our SmolLM2
  template): calls as ``{"type": "function", "function": {"name", "arguments": {...}}}``, tools passed
  to ``apply_chat_template``.
- inline (every other case): the format's tools block is appended to the system message and each
  call is rendered into the assistant text, so any chat template can show them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datagen.llm.formats import ToolFormat
from datagen.llm.types import Message, ToolCall, ToolSchema


def normalize_tool_calls(raw_calls: list[dict[str, Any]] | None) -> list[ToolCall]:
    """OpenAI-shaped or toolkit-shaped calls -> toolkit calls (arguments decoded to a dict)."""
    calls: list[ToolCall] = []
    for raw in raw_calls or []:
        function = raw.get("function", raw)
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"expected the history's tool call {function.get('name')!r} to carry JSON arguments, "
                    f"found {arguments[:200]!r}; store calls as {{'name', 'arguments': dict}}"
                ) from exc
        calls.append(ToolCall(name=function["name"], arguments=arguments))
    return calls


def template_renders_tools(chat_template: str | None) -> bool:
    """Whether a chat template shows tools and assistant tool calls itself."""
    return bool(chat_template) and "tools" in chat_template and "tool_calls" in chat_template


def structured_messages(messages: list[Message]) -> list[Message]:
    """Messages for an OpenAI-compatible API: tool calls with ids and JSON-string arguments, and
    every tool message linked to its call (ids are made up when the history has none)."""
    prepared: list[Message] = []
    pending_ids: list[str] = []
    for index, message in enumerate(messages):
        message = dict(message)
        if message.get("role") == "assistant" and message.get("tool_calls"):
            ids = [raw.get("id") or f"call_{index}_{n}" for n, raw in enumerate(message["tool_calls"])]
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(call["arguments"], ensure_ascii=False),
                    },
                }
                for call_id, call in zip(ids, normalize_tool_calls(message["tool_calls"]), strict=True)
            ]
            message.setdefault("content", None)
            pending_ids = ids
        elif message.get("role") == "tool":
            if "tool_call_id" not in message:
                message["tool_call_id"] = pending_ids.pop(0) if pending_ids else f"call_{index}"
            elif message["tool_call_id"] in pending_ids:
                pending_ids.remove(message["tool_call_id"])
            if not isinstance(message.get("content"), str):
                message["content"] = json.dumps(message.get("content"), ensure_ascii=False)
        prepared.append(message)
    return prepared


def template_messages(messages: list[Message]) -> list[Message]:
    """Messages for a chat template that renders tool calls itself (arguments as dicts)."""
    prepared: list[Message] = []
    for message in messages:
        message = dict(message)
        if message.get("role") == "assistant" and message.get("tool_calls"):
            message["tool_calls"] = [
                {"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
                for call in normalize_tool_calls(message["tool_calls"])
            ]
        prepared.append(_with_text_content(message))
    return prepared


def inline_messages(
    messages: list[Message], tools: list[ToolSchema] | None, fmt: ToolFormat
) -> list[Message]:
    """Messages with the tools block in the system turn and calls rendered as assistant text."""
    prepared: list[Message] = []
    for message in messages:
        message = dict(message)
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = normalize_tool_calls(message.pop("tool_calls"))
            message["content"] = fmt.render_calls(calls, message.get("content") or "")
        prepared.append(_with_text_content(message))
    if tools:
        block = fmt.render_tools(tools)
        if prepared and prepared[0].get("role") == "system":
            system = prepared[0]
            prepared[0] = {
                **system,
                "content": f"{system['content']}\n\n{block}" if system["content"] else block,
            }
        else:
            prepared.insert(0, {"role": "system", "content": block})
    return prepared


def _with_text_content(message: Message) -> Message:
    content = message.get("content")
    if content is None:
        message["content"] = ""
    elif not isinstance(content, str):
        message["content"] = json.dumps(content, ensure_ascii=False)
    return message


def prompt_messages(
    messages: list[Message], tools: list[ToolSchema] | None, fmt: ToolFormat, template_format: str | None
) -> tuple[list[Message], list[ToolSchema] | None]:
    """Messages and template tools for rendering a prompt locally.

    ``template_format`` is the format the model's chat template renders tools in (None if it does
    not render tools); when it is ``fmt``, the template does the work, otherwise the format does."""
    if template_format == fmt.name:
        return template_messages(messages), (tools or None)
    return inline_messages(messages, tools, fmt), None


def template_tool_format(model_path: str, chat_template: str | None) -> str | None:
    """The format a local model's chat template renders tools in: the model directory's marker,
    else hermes (the common convention); None if the template does not render tools at all."""
    if not template_renders_tools(chat_template):
        return None
    from datagen.llm.embedded import read_tool_format

    return (
        read_tool_format(model_path)
        if Path(model_path).is_dir() and read_tool_format(model_path)
        else "hermes"
    )


class LocalPrompter:
    """Renders chat prompts to token ids with a local tokenizer's chat template."""

    def __init__(self, tokenizer: Any, model_path: str, fmt: ToolFormat) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"expected {model_path} to ship a chat template (tokenizer_config.json or chat_template.jinja), "
                "found none; use an instruct/chat model or add a template"
            )
        if fmt.structured:
            raise ValueError(
                "the openai tool format needs an OpenAI-compatible server (backend: openai); "
                "for a local model pick hermes, xlam, llama3 or python"
            )
        self.tokenizer = tokenizer
        self.format = fmt
        self.template_format = template_tool_format(model_path, tokenizer.chat_template)

    def render_text(self, messages: list[Message], tools: list[ToolSchema] | None) -> str:
        prepared, template_tools = prompt_messages(messages, tools, self.format, self.template_format)
        return self.tokenizer.apply_chat_template(
            prepared, tools=template_tools, tokenize=False, add_generation_prompt=True
        )

    def render_ids(self, messages: list[Message], tools: list[ToolSchema] | None) -> list[int]:
        # The template writes every special token itself, so none are added on top.
        return self.tokenizer.encode(self.render_text(messages, tools), add_special_tokens=False)
