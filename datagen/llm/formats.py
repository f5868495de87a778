"""Tool-call formats at the model edge, rendered and parsed in one place.

Inside the toolkit a call is ``{"name": str, "arguments": dict}``. A format turns calls into the
assistant text a model of that family writes, lists tools in a system-prompt block for models whose
chat template does not render tools, and reads model text back into calls:

- ``openai``  — native: tools and ``tool_calls`` travel as structured fields of an OpenAI-compatible API.
- ``hermes``  — Hermes/Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks.
- ``xlam``    — xLAM: the whole assistant message is a JSON list ``[{"name": ..., "arguments": {...}}]``.
- ``llama3``  — Llama 3.x JSON: ``{"name": ..., "parameters": {...}}``, one per line.
- ``python``  — Python-call syntax ``[f(a=1), g(b="x")]``, read with ``ast`` (never evaluated).

Parsing never raises on model output: a malformed output becomes a :class:`ParseError` value. When
the text decodes but a call does not fit the tools (unknown name, arguments that break the JSON
schema), the decoded calls are still returned next to the error so callers can show them; callers
must not execute calls whose output carries an error.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import jsonschema

from datagen.llm.types import ParseError, ToolCall, ToolSchema

logger = logging.getLogger(__name__)

FORMAT_NAMES = ("openai", "hermes", "xlam", "llama3", "python")
_PROMPTS_DIR = Path(__file__).parent / "templates" / "tool_prompts"


class ParsedOutput(NamedTuple):
    content: str
    calls: list[ToolCall]
    error: ParseError | None


# ----------------------------------------------------------------------------- shared helpers


def tool_function(tool: ToolSchema) -> dict[str, Any]:
    """The ``function`` part of an OpenAI tool schema (bare function schemas are accepted too)."""
    return tool.get("function", tool)


def validate_calls(calls: list[ToolCall], tools: list[ToolSchema] | None) -> ParseError | None:
    """Check names against the offered tools and arguments against their JSON schemas."""
    if not tools:
        return None
    functions = {tool_function(tool)["name"]: tool_function(tool) for tool in tools}
    for call in calls:
        function = functions.get(call["name"])
        if function is None:
            return ParseError(
                "unknown_tool",
                f"the model called {call['name']!r}; expected one of {sorted(functions)}",
                json.dumps(call, ensure_ascii=False),
            )
        problem = _schema_problem(call["arguments"], function.get("parameters") or {"type": "object"})
        if problem:
            return ParseError(
                "bad_arguments", f"{call['name']}: {problem}", json.dumps(call, ensure_ascii=False)
            )
    return None


def _schema_problem(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        # A broken tool schema is the caller's problem, not the model's: do not blame the output.
        logger.debug("skipping argument validation against an invalid schema: %s", exc.message)
        return None
    errors = sorted(validator_class(schema).iter_errors(arguments), key=lambda error: list(error.path))
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(part) for part in error.path)
    return f"{error.message}" + (f" (at {where})" if where else "")


def _is_truncated(text: str) -> bool:
    """True if ``text`` ends inside a string or with brackets still open (cut off by max_tokens);
    a closing bracket of the wrong kind means the text is malformed rather than cut short."""
    pairs = {"]": "[", "}": "{", ")": "("}
    stack: list[str] = []
    quote, escaped = "", False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return bool(quote) or bool(stack)


def _json_failure(body: str, exc: json.JSONDecodeError) -> ParseError:
    if _is_truncated(body):
        return ParseError("truncated", f"the tool call JSON ends before it is complete: {exc.msg}", body)
    return ParseError("invalid_json", f"the tool call is not valid JSON: {exc.msg} at char {exc.pos}", body)


def _call_from_object(obj: Any, argument_keys: tuple[str, ...]) -> ToolCall | ParseError:
    """``{"name": ..., <argument key>: {...}}`` -> ToolCall; arguments given as a JSON string are decoded."""
    raw = json.dumps(obj, ensure_ascii=False) if not isinstance(obj, str) else obj
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ParseError("bad_structure", f'expected an object with a string "name", found {raw[:200]}', raw)
    key = next((k for k in argument_keys if k in obj), None)
    arguments: Any = obj[key] if key else {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return _json_failure(arguments, exc)
    if not isinstance(arguments, dict):
        return ParseError(
            "bad_structure",
            f"expected the arguments of {obj['name']!r} to be an object, found {arguments!r}",
            raw,
        )
    return ToolCall(name=obj["name"], arguments=arguments)


def _calls_from_value(value: Any, argument_keys: tuple[str, ...]) -> list[ToolCall] | ParseError:
    items = value if isinstance(value, list) else [value]
    calls: list[ToolCall] = []
    for item in items:
        call = _call_from_object(item, argument_keys)
        if isinstance(call, ParseError):
            return call
        calls.append(call)
    return calls


def _strip_code_fence(text: str) -> str:
    match = re.fullmatch(r"\s*```[\w-]*\s*\n?(.*?)\n?```\s*", text, re.S)
    return match.group(1) if match else text


def _scan_json_calls(text: str, start: re.Pattern[str], argument_keys: tuple[str, ...]) -> ParsedOutput:
    """Find every JSON value in ``text`` that starts where ``start`` matches; the rest is content."""
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    pieces: list[str] = []
    position = 0
    error: ParseError | None = None
    while (match := start.search(text, position)) is not None:
        begin = match.start()
        try:
            value, end = decoder.raw_decode(text, begin)
        except json.JSONDecodeError as exc:
            error = _json_failure(text[begin:], exc)
            pieces.append(text[position:begin])
            position = len(text)
            break
        decoded = _calls_from_value(value, argument_keys)
        if isinstance(decoded, ParseError):
            error = error or decoded
        else:
            calls.extend(decoded)
        pieces.append(text[position:begin])
        position = end
    pieces.append(text[position:])
    content = "\n".join(piece.strip(" \t\n;") for piece in pieces if piece.strip(" \t\n;"))
    return ParsedOutput(content, calls, error)


def _with_validation(parsed: ParsedOutput, tools: list[ToolSchema] | None) -> ParsedOutput:
    if parsed.error is not None or not parsed.calls:
        return parsed
    return ParsedOutput(parsed.content, parsed.calls, validate_calls(parsed.calls, tools))


@cache
def _prompt_template(name: str) -> jinja2.Template:
    environment = jinja2.Environment(keep_trailing_newline=False, undefined=jinja2.StrictUndefined)
    # jinja's own tojson escapes <, > and & for HTML; models should see plain JSON.
    environment.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    return environment.from_string((_PROMPTS_DIR / f"{name}.jinja").read_text())


# ----------------------------------------------------------------------------- the formats


_REASONING = re.compile(r"\A\s*<think>(.*?)(</think>|\Z)\s*", re.S)


class ToolFormat(ABC):
    """How one model family writes tool calls."""

    name: str
    #: True if tools and tool_calls travel as API fields rather than in the text.
    structured: bool = False

    def render_tools(self, tools: list[ToolSchema]) -> str:
        """The system-prompt block that lists ``tools`` and tells the model how to call them."""
        return _prompt_template(self.name).render(tools=tools).strip()

    @abstractmethod
    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        """The assistant text that makes ``calls`` (after ``content``, if any)."""

    def parse(self, text: str, tools: list[ToolSchema] | None = None) -> ParsedOutput:
        """Model text -> (content, calls, error); never raises on malformed text.

        A leading ``<think>...</think>`` block (reasoning models: Qwen3, R1 distills) is not part of
        the answer: calls written while thinking are not calls, and the content starts after it."""
        reasoning = _REASONING.match(text)
        if reasoning and not reasoning.group(2):
            return ParsedOutput(
                "",
                [],
                ParseError("truncated", "the <think> block is not closed: no answer follows it", text[:2000]),
            )
        text = text[reasoning.end() :] if reasoning else text
        try:
            return self._parse(text, tools)
        except (RecursionError, MemoryError):
            # Pathologically nested output (a looping model) must not kill a run.
            return ParsedOutput(
                "", [], ParseError("invalid_syntax", "the output is nested too deeply to read", text[:2000])
            )

    @abstractmethod
    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput: ...


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
        calls: list[ToolCall] = []
        for raw in tool_calls or []:
            function = raw.get("function") if isinstance(raw, dict) else None
            call = _call_from_object(function, ("arguments",))
            if isinstance(call, ParseError):
                return ParsedOutput(content or "", calls, call)
            calls.append(call)
        return _with_validation(ParsedOutput(content or "", calls, None), tools)


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
            body, closed = _strip_code_fence(match.group(1)).strip(), bool(match.group(2))
            try:
                value = json.loads(body)
            except json.JSONDecodeError as exc:
                error = error or (
                    _json_failure(body, exc)
                    if closed
                    else ParseError(
                        "truncated", "a <tool_call> block is not closed and its JSON is incomplete", body
                    )
                )
                continue
            decoded = _calls_from_value(value, ("arguments", "parameters"))
            if isinstance(decoded, ParseError):
                error = error or decoded
            else:
                calls.extend(decoded)
        content = self._block.sub("", text).replace("</tool_call>", "").strip()
        return _with_validation(ParsedOutput(content, calls, error), tools)


class XLAMFormat(ToolFormat):
    name = "xlam"
    _start = re.compile(r'\[\s*\{\s*"name"|\{\s*"name"\s*:')

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        payload = json.dumps(
            [{"name": c["name"], "arguments": c["arguments"]} for c in calls], ensure_ascii=False
        )
        return f"{content}\n{payload}" if content else payload

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        body = _strip_code_fence(text).strip()
        if body.startswith("[") and not body.startswith("[]"):
            try:
                value = json.loads(body)
            except json.JSONDecodeError as exc:
                if _is_truncated(body):
                    return ParsedOutput("", [], _json_failure(body, exc))
            else:
                decoded = _calls_from_value(value, ("arguments", "parameters"))
                if isinstance(decoded, ParseError):
                    return ParsedOutput("", [], decoded)
                return _with_validation(ParsedOutput("", decoded, None), tools)
        if body == "[]":
            return ParsedOutput("", [], None)
        return _with_validation(_scan_json_calls(text, self._start, ("arguments", "parameters")), tools)


class Llama3Format(ToolFormat):
    name = "llama3"
    _start = re.compile(r'\{\s*"name"\s*:')

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        lines = [
            json.dumps({"name": c["name"], "parameters": c["arguments"]}, ensure_ascii=False) for c in calls
        ]
        return "\n".join(([content] if content else []) + lines)

    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput:
        cleaned = _strip_code_fence(text.replace("<|python_tag|>", "").replace("<|eom_id|>", ""))
        return _with_validation(_scan_json_calls(cleaned, self._start, ("parameters", "arguments")), tools)


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
        body = _strip_code_fence(text.replace("<|python_tag|>", "")).strip()
        whole = self._parse_expression(body)
        if whole is not None and not isinstance(whole, ParseError):
            return _with_validation(ParsedOutput("", whole, None), tools)
        match = self._list_start.search(body)
        if match is None:
            return ParsedOutput(body, [], None)
        end = self._closing_bracket(body, match.start())
        if end is None:
            return ParsedOutput(
                body[: match.start()].strip(),
                [],
                ParseError(
                    "truncated", "the list of calls ends before its closing bracket", body[match.start() :]
                ),
            )
        span = body[match.start() : end + 1]
        content = " ".join(part for part in (body[: match.start()].strip(), body[end + 1 :].strip()) if part)
        calls = self._parse_expression(span)
        if calls is None:
            return ParsedOutput(
                content, [], ParseError("invalid_syntax", "expected a list of calls like [f(a=1)]", span)
            )
        if isinstance(calls, ParseError):
            return ParsedOutput(content, [], calls)
        return _with_validation(ParsedOutput(content, calls, None), tools)

    @staticmethod
    def _closing_bracket(text: str, start: int) -> int | None:
        depth, quote, escaped = 0, "", False
        for index in range(start, len(text)):
            char = text[index]
            if quote:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char in "[({":
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
        name = self._dotted_name(node.func)
        snippet = ast.get_source_segment(source, node) or source
        if name is None:
            return ParseError("invalid_syntax", "expected a function name like f or module.f", snippet)
        if node.args:
            return ParseError(
                "bad_structure", f"{name}: positional arguments are not allowed; expected name=value", snippet
            )
        arguments: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                return ParseError("bad_structure", f"{name}: **kwargs is not allowed", snippet)
            try:
                arguments[keyword.arg] = self._literal(keyword.value)
            except (ValueError, TypeError):
                segment = ast.get_source_segment(source, keyword.value) or "?"
                return ParseError(
                    "invalid_syntax",
                    f"{name}: argument {keyword.arg}={segment} is not a literal value",
                    snippet,
                )
        return ToolCall(name=name, arguments=arguments)

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
            return {
                self._literal(key): self._literal(value)
                for key, value in zip(node.keys, node.values, strict=True)
            }  # type: ignore[arg-type]
        value = ast.literal_eval(node)
        if isinstance(value, (set, bytes, complex)):
            raise ValueError(f"{type(value).__name__} is not JSON")
        return value

    @staticmethod
    def _dotted_name(node: ast.expr) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        return ".".join(reversed(parts))


def get_format(name: str) -> ToolFormat:
    """The tool-call format called ``name`` (one of :data:`FORMAT_NAMES`)."""
    if name == "openai":
        return OpenAIFormat()
    if name == "hermes":
        return HermesFormat()
    if name == "xlam":
        return XLAMFormat()
    if name == "llama3":
        return Llama3Format()
    if name == "python":
        return PythonFormat()
    raise ValueError(f"unknown tool-call format {name!r}; expected one of {list(FORMAT_NAMES)}")
