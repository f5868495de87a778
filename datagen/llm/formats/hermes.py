"""``hermes``: Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks."""

from __future__ import annotations

import json
import re

from datagen.llm.formats.base import ParsedOutput, ToolFormat
from datagen.llm.formats.json_calls import calls_from_value, json_failure, strip_code_fence
from datagen.llm.formats.validation import with_validation
from datagen.llm.types import ParseError, ToolCall, ToolSchema


class HermesFormat(ToolFormat):
    name = "hermes"
    _block = re.compile(r"<tool_call>(.*?)(</tool_call>|(?=<tool_call>)|\Z)", re.S)

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        blocks = [
            "<tool_call>\n"
            + json.dumps({"name": c["name"], "arguments": c["arguments"]}, ensure_ascii=False)
            + "\n</tool_call>"
            for c in calls
        ]
        return "\n".join(([content] if content else []) + blocks)

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        calls: list[ToolCall] = []
        error: ParseError | None = None
        for match in self._block.finditer(text):
            body, closed = strip_code_fence(match.group(1)).strip(), bool(match.group(2))
            try:
                value = json.loads(body)
            except ValueError as exc:
                error = error or (
                    json_failure(body, exc)
                    if closed or not isinstance(exc, json.JSONDecodeError)
                    else ParseError(
                        "truncated", "a <tool_call> block is not closed and its JSON is incomplete", body
                    )
                )
                continue
            decoded = calls_from_value(value, ("arguments", "parameters"))
            if isinstance(decoded, ParseError):
                error = error or decoded
            else:
                calls.extend(decoded)
        content = self._block.sub("", text).replace("</tool_call>", "").strip()
        return with_validation(ParsedOutput(content, calls, error), tools)
