"""``llama3``: Llama 3.x JSON calls, ``{"name": ..., "parameters": {...}}``, one per line."""

from __future__ import annotations

import json
import re

from datagen.llm.formats.base import ParsedOutput, ToolFormat
from datagen.llm.formats.json_calls import scan_json_calls, strip_code_fence
from datagen.llm.formats.validation import with_validation
from datagen.llm.types import ToolCall, ToolSchema


class Llama3Format(ToolFormat):
    name = "llama3"
    _start = re.compile(r'\{\s*"name"\s*:')

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        lines = [
            json.dumps({"name": c["name"], "parameters": c["arguments"]}, ensure_ascii=False) for c in calls
        ]
        return "\n".join(([content] if content else []) + lines)

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        cleaned = strip_code_fence(text.replace("<|python_tag|>", "").replace("<|eom_id|>", ""))
        return with_validation(scan_json_calls(cleaned, self._start, ("parameters", "arguments")), tools)
