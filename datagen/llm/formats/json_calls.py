"""Reading calls written as JSON (``{"name": ..., "arguments": {...}}``, alone, in a list or among
text), shared by the JSON formats; every failure is a :class:`ParseError` value that says why."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from datagen.llm.formats.base import ParsedOutput
from datagen.llm.types import ParseError, ToolCall


def brackets_outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """(index, bracket) of every bracket of ``text`` from ``start`` that is outside a quoted string
    (``"`` or ``'``, with backslash escapes); last ``(len(text), '"')`` when the text ends inside one."""
    quote, escaped = "", False
    for index, char in enumerate(text[start:], start):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[]{}()":
            yield index, char
    if quote:
        yield len(text), '"'


def is_truncated(text: str) -> bool:
    """True if ``text`` ends inside a string or with brackets still open (cut off by max_tokens);
    a closing bracket of the wrong kind means the text is malformed rather than cut short."""
    pairs = {"]": "[", "}": "{", ")": "("}
    stack: list[str] = []
    for _, char in brackets_outside_strings(text):
        if char == '"':
            return True
        if char in "[{(":
            stack.append(char)
        elif not stack or stack.pop() != pairs[char]:
            return False
    return bool(stack)


def json_failure(body: str, exc: ValueError) -> ParseError:
    """Why ``body`` is not a JSON call: cut short, invalid JSON, or a value Python refuses."""
    if not isinstance(exc, json.JSONDecodeError):
        # Python's int-size guard (a number of 4,301+ digits), not a syntax error.
        return ParseError("invalid_value", f"the tool call JSON holds a value Python refuses: {exc}", body)
    if is_truncated(body):
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


def call_from_object(obj: Any, argument_keys: tuple[str, ...]) -> ToolCall | ParseError:
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
            return json_failure(arguments, exc)
    if not isinstance(arguments, dict):
        return ParseError(
            "bad_structure",
            f"expected the arguments of {obj['name']!r} to be an object, found {str(arguments)[:200]}",
            raw,
        )
    return checked_call(obj["name"], arguments, raw)


def calls_from_value(value: Any, argument_keys: tuple[str, ...]) -> list[ToolCall] | ParseError:
    """The calls of one decoded JSON value: a call object or a list of them."""
    items = value if isinstance(value, list) else [value]
    calls: list[ToolCall] = []
    for item in items:
        call = call_from_object(item, argument_keys)
        if isinstance(call, ParseError):
            return call
        calls.append(call)
    return calls


def strip_code_fence(text: str) -> str:
    """The body of a text wrapped whole in a Markdown code fence; other text as it is."""
    match = re.fullmatch(r"\s*```[\w-]*\s*\n?(.*?)\n?```\s*", text, re.S)
    return match.group(1) if match else text


# Llama 3's marker before calls (JSON or pythonic) and the end of a message that awaits a tool result.
PYTHON_TAG, END_OF_MESSAGE = "<|python_tag|>", "<|eom_id|>"


def strip_framing(text: str, opening: str = "", closing: str = "") -> str:
    """``text`` without the ``opening`` marker it starts with and the ``closing`` one it ends with
    (Llama's ``<|python_tag|>`` ... ``<|eom_id|>``). Only the edges: the same characters inside a call
    are an argument's text."""
    body = text.strip()
    if opening and body.startswith(opening):
        body = body[len(opening) :]
    if closing and body.endswith(closing):
        body = body[: -len(closing)]
    return body


def without_markers(text: str, markers: tuple[str, ...]) -> str:
    """Text outside any call with the format's framing markers taken out."""
    for marker in markers:
        text = text.replace(marker, "")
    return text


def scan_json_calls(
    text: str, start: re.Pattern[str], argument_keys: tuple[str, ...], markers: tuple[str, ...] = ()
) -> ParsedOutput:
    """Find every JSON value in ``text`` that starts where ``start`` matches; the rest, without the
    framing ``markers``, is content."""
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
            error = json_failure(text[begin:], exc)
            pieces.append(text[position:begin])
            position = len(text)
            break
        decoded = calls_from_value(value, argument_keys)
        if isinstance(decoded, ParseError):
            error = error or decoded
        else:
            calls.extend(decoded)
        pieces.append(text[position:begin])
        position = end
    pieces.append(text[position:])
    pieces = [without_markers(piece, markers).strip(" \t\n;") for piece in pieces]
    content = "\n".join(piece for piece in pieces if piece)
    return ParsedOutput(content, calls, error)
