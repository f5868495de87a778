"""``llama3``: Llama 3.x JSON calls, ``{"name": ..., "parameters": {...}}``, one per line."""

from __future__ import annotations

import json
import re

from datagen.llm.formats.base import ParsedOutput, ToolFormat
from datagen.llm.formats.json_calls import (
    END_OF_MESSAGE,
    PYTHON_TAG,
    scan_json_calls,
    strip_code_fence,
    strip_framing,
)
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
        # The markers frame calls; inside a call's JSON they are an argument's text and stay.
        cleaned = strip_code_fence(strip_framing(text, PYTHON_TAG, END_OF_MESSAGE))
        parsed = scan_json_calls(
            cleaned, self._start, ("parameters", "arguments"), (PYTHON_TAG, END_OF_MESSAGE)
        )
        return with_validation(parsed, tools)
