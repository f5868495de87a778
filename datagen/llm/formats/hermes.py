"""``hermes``: Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks."""

from __future__ import annotations

import json
import re
from typing import Any

from datagen.llm.formats.base import ParsedOutput, ToolFormat
from datagen.llm.formats.json_calls import calls_from_value, json_failure, strip_code_fence
from datagen.llm.formats.validation import with_validation
from datagen.llm.types import ParseError, ToolCall, ToolSchema

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")


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
        outside: list[str] = []
        position = 0
        while (start := text.find(_OPEN, position)) != -1:
            outside.append(text[position:start])
            value, end = self._whole_json_block(text, start)
            if end is None:  # not one JSON value closed by the tag: read it as the block pattern does
                match = self._block.match(text, start)
                assert match is not None  # the pattern matches at every opening tag
                value, error = self._block_value(match, error)
                end = match.end()
            position = end
            if value is None:
                continue
            decoded = calls_from_value(value, ("arguments", "parameters"))
            if isinstance(decoded, ParseError):
                error = error or decoded
            else:
                calls.extend(decoded)
        outside.append(text[position:])
        content = "".join(outside).replace(_CLOSE, "").strip()
        return with_validation(ParsedOutput(content, calls, error), tools)

    @staticmethod
    def _whole_json_block(text: str, start: int) -> tuple[Any, int | None]:
        """The JSON value right after the opening tag at ``start`` and the end of its block, when the
        value is followed by the closing tag, the next opening tag or the end of the text; else
        (None, None). Decoding the JSON first keeps a tag written inside an argument's string text."""
        # Positions, not slices: a slice of the rest per block made an output of many blocks quadratic.
        begin = _SPACE.match(text, start + len(_OPEN)).end()  # type: ignore[union-attr]
        try:
            value, end = _DECODER.raw_decode(text, begin)
        except (ValueError, RecursionError):
            return None, None
        after = _SPACE.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith(_CLOSE, after):
            return value, after + len(_CLOSE)
        if after == len(text) or text.startswith(_OPEN, after):
            return value, after
        return None, None

    @staticmethod
    def _block_value(match: re.Match[str], error: ParseError | None) -> tuple[Any, ParseError | None]:
        """The value of a block the pattern found (code fences allowed), or None and the first error."""
        body, closed = strip_code_fence(match.group(1)).strip(), bool(match.group(2))
        try:
            return json.loads(body), error
        except ValueError as exc:
            return None, error or (
                json_failure(body, exc)
                if closed or not isinstance(exc, json.JSONDecodeError)
                else ParseError(
                    "truncated", "a <tool_call> block is not closed and its JSON is incomplete", body
                )
            )
