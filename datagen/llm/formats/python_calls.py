"""``python``: Python-call syntax ``[f(a=1), g(b="x")]``, read with ``ast`` (never evaluated)."""

from __future__ import annotations

import ast
import re
from typing import Any

from datagen.llm.formats.base import ParsedOutput, ToolFormat
from datagen.llm.formats.json_calls import (
    PYTHON_TAG,
    brackets_outside_strings,
    checked_call,
    strip_code_fence,
    strip_framing,
    without_markers,
)
from datagen.llm.formats.validation import with_validation
from datagen.llm.types import ParseError, ToolCall, ToolSchema


def dotted_name(node: ast.expr) -> str | None:
    """``f`` or ``module.f`` for a name or attribute chain; None for any other expression."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


_MARKERS = (PYTHON_TAG,)


class PythonFormat(ToolFormat):
    name = "python"
    _list_start = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")
    _json_words = {"true": True, "false": False, "null": None}

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        rendered = ", ".join(
            f"{c['name']}(" + ", ".join(f"{key}={value!r}" for key, value in c["arguments"].items()) + ")"
            for c in calls
        )
        return f"{content}\n[{rendered}]" if content else f"[{rendered}]"

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        # Llama opens its calls with the tag; inside a call's string it is an argument's text and stays.
        body = strip_code_fence(strip_framing(text, PYTHON_TAG)).strip()
        whole = self._parse_expression(body)
        if whole is not None and not isinstance(whole, ParseError):
            return with_validation(ParsedOutput("", whole, None), tools)
        match = self._list_start.search(body)
        if match is None:
            return ParsedOutput(without_markers(body, _MARKERS).strip(), [], None)
        end = self._closing_bracket(body, match.start())
        if end is None:
            return ParsedOutput(
                without_markers(body[: match.start()], _MARKERS).strip(),
                [],
                ParseError(
                    "truncated", "the list of calls ends before its closing bracket", body[match.start() :]
                ),
            )
        span = body[match.start() : end + 1]
        outside = (body[: match.start()], body[end + 1 :])
        content = " ".join(part for part in (without_markers(p, _MARKERS).strip() for p in outside) if part)
        calls = self._parse_expression(span)
        if calls is None:
            return ParsedOutput(
                content, [], ParseError("invalid_syntax", "expected a list of calls like [f(a=1)]", span)
            )
        if isinstance(calls, ParseError):
            return ParsedOutput(content, [], calls)
        return with_validation(ParsedOutput(content, calls, None), tools)

    @staticmethod
    def _closing_bracket(text: str, start: int) -> int | None:
        depth = 0
        for index, char in brackets_outside_strings(text, start):
            if char in "[({":
                depth += 1
            elif char in "])}":
                depth -= 1
                if depth == 0:
                    return index
        return None

    def _parse_expression(self, source: str) -> list[ToolCall] | ParseError | None:
        """Calls if ``source`` is a call or a list of calls; None if it is not code of that shape."""
        try:
            tree = ast.parse(source, mode="eval").body
        except (SyntaxError, ValueError):
            return None
        nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
        if not nodes or not all(isinstance(node, ast.Call) for node in nodes):
            return None
        calls: list[ToolCall] = []
        for node in nodes:
            call = self._call_from_node(node, source)
            if isinstance(call, ParseError):
                return call
            calls.append(call)
        return calls

    def _call_from_node(self, node: ast.Call, source: str) -> ToolCall | ParseError:
        # Source segments are looked up only for an error: each lookup scans the source, so doing it
        # for every call made a 20,000-call output quadratic.
        def snippet() -> str:
            return ast.get_source_segment(source, node) or source

        name = dotted_name(node.func)
        if name is None:
            return ParseError("invalid_syntax", "expected a function name like f or module.f", snippet())
        if node.args:
            return ParseError(
                "bad_structure",
                f"{name}: positional arguments are not allowed; expected name=value",
                snippet(),
            )
        arguments: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                return ParseError("bad_structure", f"{name}: **kwargs is not allowed", snippet())
            if keyword.arg in arguments:
                return ParseError(
                    "bad_structure",
                    f"{name}: argument {keyword.arg} is given twice; expected each name once",
                    snippet(),
                )
            try:
                arguments[keyword.arg] = self._literal(keyword.value)
            except (ValueError, TypeError):
                segment = ast.get_source_segment(source, keyword.value) or "?"
                return ParseError(
                    "invalid_syntax",
                    f"{name}: argument {keyword.arg}={segment[:200]} is not a literal value",
                    snippet(),
                )
        call = checked_call(name, arguments, "")
        if isinstance(call, ParseError):
            call.raw = snippet()
        return call

    def _literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and node.id in self._json_words:
            return self._json_words[node.id]
        if isinstance(node, ast.List):
            return [self._literal(element) for element in node.elts]
        if isinstance(node, ast.Tuple):
            return [self._literal(element) for element in node.elts]
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise ValueError("dict unpacking")
            keys = [self._literal(key) for key in node.keys]  # type: ignore[arg-type]
            if not all(isinstance(key, str) for key in keys):
                raise ValueError("JSON object keys are strings")
            return {key: self._literal(value) for key, value in zip(keys, node.values, strict=True)}
        value = ast.literal_eval(node)
        if isinstance(value, (set, bytes, complex)):
            raise ValueError(f"{type(value).__name__} is not JSON")
        return value
