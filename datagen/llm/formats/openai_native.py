"""``openai``: tools and ``tool_calls`` travel as structured fields of an OpenAI-compatible API."""

from __future__ import annotations

from typing import Any

from datagen.llm.formats.base import ParsedOutput, ToolFormat, guarded
from datagen.llm.formats.json_calls import call_from_object
from datagen.llm.formats.validation import with_validation
from datagen.llm.types import ParseError, ToolCall, ToolSchema


class OpenAIFormat(ToolFormat):
    name = "openai"
    structured = True

    def render_tools(self, tools: list[ToolSchema]) -> str:
        raise ValueError("the openai format sends tools as the API's `tools` field, not in the prompt")

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        raise ValueError("the openai format sends tool calls as the API's `tool_calls` field, not as text")

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        return ParsedOutput(text, [], None)

    def parse_native(
        self, content: str | None, tool_calls: list[dict[str, Any]] | None, tools: list[ToolSchema] | None
    ) -> ParsedOutput:
        """Read an OpenAI response message's ``tool_calls`` (arguments are JSON strings)."""
        return guarded(lambda: self._parse_native(content, tool_calls, tools), str(tool_calls)[:2000])

    def _parse_native(
        self, content: str | None, tool_calls: list[dict[str, Any]] | None, tools: list[ToolSchema] | None
    ) -> ParsedOutput:
        calls: list[ToolCall] = []
        for raw in tool_calls or []:
            function = raw.get("function") if isinstance(raw, dict) else None
            call = call_from_object(function, ("arguments",))
            if isinstance(call, ParseError):
                return ParsedOutput(content or "", calls, call)
            calls.append(call)
        return with_validation(ParsedOutput(content or "", calls, None), tools)
