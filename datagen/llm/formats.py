"""Tool-call formats at the model edge, rendered and parsed in one place.

Inside the toolkit a call is ``{"name": str, "arguments": dict}``. A format turns calls into the
assistant text a model of that family writes, lists tools in a system-prompt block for models whose
chat template does not render tools, and reads model text back into calls:

- ``openai``  — native: tools and ``tool_calls`` travel as structured fields of an OpenAI-compatible API.
- ``hermes``  — Hermes/Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks.
- ``xlam``    — xLAM: the whole assistant message is a JSON list ``[{"name": ..., "arguments": {...}}]``.
- ``llama3``  — Llama 3.x JSON: ``{"name": ..., "parameters": {...}}``, one per line.
- ``python``  — Python-call syntax ``[f(a=1), g(b="x")]``, read with ``ast`` (never evaluated).

Parsing never raises on model output: a malformed output becomes a :class:`ParseError` value. Every
decoded call's arguments are plain JSON that can be written as UTF-8: a value JSON cannot hold
(``...``, ``inf``, a set, an integer over 4,300 digits, a non-string key) or text that cannot be
encoded (a lone surrogate such as ``"\ud800"``) makes the output an ``invalid_value`` error, so no
such value reaches an environment, a state hash or a run file.

Which calls of an output run (:func:`runnable_calls`), everywhere calls are executed (Phase 2's
episode loop, the τ harness, the simulated user's device, BFCL multi-turn):

- an output that could not be read in full (truncated, invalid JSON or syntax, a wrong structure, an
  invalid value) runs **nothing**, not even the calls decoded before the break: as in τ-bench, an
  agent acts on nothing from a broken message. The message is kept as the text the model wrote.
- an output that was read in full but whose calls do not fit the tools (``unknown_tool``,
  ``bad_arguments``) runs its calls: the environment refuses the bad ones with an error observation
  the agent can read, as τ-bench's and BFCL's executors do. The calls are returned next to the error
  so callers can show them.

BFCL multi-turn keeps the benchmark's own protocol so its numbers compare with the leaderboard: in
``fc`` mode a broken message runs nothing (BFCL's FC handlers fail to decode it and go to the next
turn, which is this rule); in the text modes each family's BFCL decoder decides, as BFCL's handler
does (Qwen's skips a ``<tool_call>`` block that does not decode and runs the others).
"""

from __future__ import annotations

import ast
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache, lru_cache
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


#: Errors about how decoded calls fit the offered tools; every other kind means the output is broken.
TOOL_FIT_ERRORS = frozenset({"unknown_tool", "bad_arguments"})


def is_broken(error: ParseError | None) -> bool:
    """True for an output that could not be read in full: none of its calls may run."""
    return error is not None and error.kind not in TOOL_FIT_ERRORS


def runnable_calls(calls: list[ToolCall], error: ParseError | None) -> list[ToolCall]:
    """The calls of one output that may run (the rule in the module docstring): none from a broken
    output, all of them otherwise (the environment answers the ones that do not fit the tools)."""
    return [] if is_broken(error) else calls


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
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(part) for part in error.path)
    return f"{error.message}" + (f" (at {where})" if where else "")


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> jsonschema.protocols.Validator | None:
    """A validator per distinct schema: checking a schema against its meta-schema costs far more than
    validating a call, and the same few tool schemas come back on every call of a run."""
    schema = json.loads(schema_json)
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        # A broken tool schema is the caller's problem, not the model's: do not blame the output.
        logger.debug("skipping argument validation against an invalid schema: %s", exc.message)
        return None
    return validator_class(schema)


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


def _json_failure(body: str, exc: ValueError) -> ParseError:
    if not isinstance(exc, json.JSONDecodeError):
        # Python's int-size guard (a number of 4,301+ digits), not a syntax error.
        return ParseError("invalid_value", f"the tool call JSON holds a value Python refuses: {exc}", body)
    if _is_truncated(body):
        return ParseError("truncated", f"the tool call JSON ends before it is complete: {exc.msg}", body)
    return ParseError("invalid_json", f"the tool call is not valid JSON: {exc.msg} at char {exc.pos}", body)


def checked_call(name: str, arguments: dict[str, Any], raw: str) -> ToolCall | ParseError:
    """``name(arguments)`` as a ToolCall if both are plain JSON that can be written as UTF-8."""
    try:
        json.dumps([name, arguments], ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape", "backslashreplace").decode("ascii")
        return ParseError(
            "invalid_value",
            f"{name.encode('utf-8', 'backslashreplace').decode('utf-8')}: the call holds text that is not "
            f"valid Unicode ({bad}, a lone surrogate); expected text that can be written as UTF-8",
            raw,
        )
    except (TypeError, ValueError) as exc:
        return ParseError("invalid_value", f"{name}: an argument is not a plain JSON value ({exc})", raw)
    return ToolCall(name=name, arguments=arguments)


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
        except ValueError as exc:
            return _json_failure(arguments, exc)
    if not isinstance(arguments, dict):
        return ParseError(
            "bad_structure",
            f"expected the arguments of {obj['name']!r} to be an object, found {str(arguments)[:200]}",
            raw,
        )
    return checked_call(obj["name"], arguments, raw)


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
        except ValueError as exc:
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
        return _guarded(lambda: self._parse(text, tools), text)

    @abstractmethod
    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput: ...


def _guarded(parse: Callable[[], ParsedOutput], raw: str) -> ParsedOutput:
    try:
        return parse()
    except (RecursionError, MemoryError):
        # Pathologically nested output (a looping model) must not kill a run.
        return ParsedOutput(
            "", [], ParseError("invalid_syntax", "the output is nested too deeply to read", raw[:2000])
        )


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
        return _guarded(lambda: self._parse_native(content, tool_calls, tools), str(tool_calls)[:2000])

    def _parse_native(
        self, content: str | None, tool_calls: list[dict[str, Any]] | None, tools: list[ToolSchema] | None
    ) -> ParsedOutput:
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
            except ValueError as exc:
                error = error or (
                    _json_failure(body, exc)
                    if closed or not isinstance(exc, json.JSONDecodeError)
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
            except ValueError as exc:
                if _is_truncated(body) or not isinstance(exc, json.JSONDecodeError):
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
        # Source segments are looked up only for an error: each lookup scans the source, so doing it
        # for every call made a 20,000-call output quadratic.
        def snippet() -> str:
            return ast.get_source_segment(source, node) or source

        name = self._dotted_name(node.func)
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
