"""``xlam``: the whole assistant message is a JSON list ``[{"name": ..., "arguments": {...}}]``."""

from __future__ import annotations

import json
import re

from datagen.llm.formats.base import ParsedOutput, ToolFormat
from datagen.llm.formats.json_calls import (
    calls_from_value,
    is_truncated,
    json_failure,
    scan_json_calls,
    strip_code_fence,
)
from datagen.llm.formats.validation import with_validation
from datagen.llm.types import ParseError, ToolCall, ToolSchema


class XLAMFormat(ToolFormat):
    name = "xlam"
    _start = re.compile(r'\[\s*\{\s*"name"|\{\s*"name"\s*:')

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        payload = json.dumps(
            [{"name": c["name"], "arguments": c["arguments"]} for c in calls], ensure_ascii=False
        )
        return f"{content}\n{payload}" if content else payload

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        body = strip_code_fence(text).strip()
        if body.startswith("[") and not body.startswith("[]"):
            try:
                value = json.loads(body)
            except ValueError as exc:
                if is_truncated(body) or not isinstance(exc, json.JSONDecodeError):
                    return ParsedOutput("", [], json_failure(body, exc))
            else:
                decoded = calls_from_value(value, ("arguments", "parameters"))
                if isinstance(decoded, ParseError):
                    return ParsedOutput("", [], decoded)
                return with_validation(ParsedOutput("", decoded, None), tools)
        if body == "[]":
            return ParsedOutput("", [], None)
        return with_validation(scan_json_calls(text, self._start, ("arguments", "parameters")), tools)
