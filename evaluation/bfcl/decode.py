"""Turn a raw model result (as stored in a BFCL result file) into function calls.

Decoded single-turn output has BFCL's checker shape: ``[{name: {param: value}}, ...]``.
Formats:

* ``python`` — Python call syntax, ``[f(a=1), g(b="x")]``, as BFCL's prompt-mode models write
  it. Parsed with :mod:`ast`; only literals are read. Arithmetic on literals (``2**10``) is folded
  by a small evaluator over numbers and strings — nothing is ever passed to ``eval``.
* ``json`` — what BFCL's function-calling handlers store: a list of ``{name: arguments}`` where
  ``arguments`` is a JSON string (or already a dict).
* any tool-call format of the LLM runtime (``hermes``, ``xlam``, ``llama3``, ``openai``, ...),
  decoded through ``datagen.llm.formats``.

Java and JavaScript items in ``python`` format carry their values as source text (``new
int[]{1, 2}``); string literals are unquoted, everything else is kept as written.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from typing import Any

Decoded = list[dict[str, dict[str, Any]]]

PYTHON = "python"
JSON = "json"
NATIVE_FORMATS = (PYTHON, JSON)


class DecodeError(ValueError):
    """The raw result holds no function call in the expected format."""


# ---------------------------------------------------------------- python call syntax

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_MAX_EXPONENT = 4096  # refuse to build huge numbers from model text


def _fold_arithmetic(node: ast.AST) -> Any:
    """Value of an arithmetic expression over literals; DecodeError for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex, str, bytes)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _fold_arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_fold_arithmetic(elt) for elt in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _fold_arithmetic(node.left), _fold_arithmetic(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > _MAX_EXPONENT:
            raise DecodeError("exponent too large in an argument expression")
        try:
            return _BINARY[type(node.op)](left, right)
        except Exception as exc:  # arithmetic errors on model text are decode failures
            raise DecodeError(f"cannot evaluate argument expression: {exc}") from exc
    raise DecodeError(f"unsupported expression in an argument: {ast.unparse(node)!r}")


def _resolve_value(node: ast.AST) -> Any:
    """A literal argument value, following BFCL's reading of each node type."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        # BFCL negates the operand's literal whatever the operator; non-literals fail.
        if not isinstance(node.operand, ast.Constant):
            raise DecodeError(f"unsupported unary operand: {ast.unparse(node)!r}")
        try:
            return -node.operand.value
        except TypeError as exc:
            raise DecodeError(f"cannot negate {node.operand.value!r}") from exc
    if isinstance(node, ast.List):
        return [_resolve_value(elt) for elt in node.elts]
    if isinstance(node, ast.Dict):
        return {_resolve_value(k): _resolve_value(v) for k, v in zip(node.keys, node.values, strict=False)}
    if isinstance(node, ast.BinOp):
        return _fold_arithmetic(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _resolve_call(node) if node.keywords else ast.unparse(node)
    if isinstance(node, ast.Tuple):
        return tuple(_resolve_value(elt) for elt in node.elts)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) + "[" + ast.unparse(node.slice) + "]"
    if node is None:  # `{**mapping}` inside a dict literal
        raise DecodeError("unsupported `**` unpacking in a dict argument")
    raise DecodeError(f"unsupported value type {type(node).__name__} in {ast.unparse(node)!r}")


def _call_name(func: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _resolve_call(call: ast.Call) -> dict[str, dict[str, Any]]:
    # Positional arguments are dropped, as BFCL does: only keyword arguments are scored.
    return {_call_name(call.func): {kw.arg: _resolve_value(kw.value) for kw in call.keywords}}


def _bracketed(raw: str) -> str:
    text = raw.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    return text.strip().strip("'")


def decode_python(raw: Any) -> Decoded:
    """Calls written in Python syntax, as BFCL's prompt-mode models output them."""
    if not isinstance(raw, str):
        raise DecodeError(f"expected the model's text, found {type(raw).__name__}")
    try:
        tree = ast.parse(_bracketed(raw), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise DecodeError(f"not Python call syntax: {exc}") from exc
    body = tree.body
    if isinstance(body, ast.Call):
        return [_resolve_call(body)]
    if not isinstance(body, (ast.List, ast.Tuple, ast.Set)):
        raise DecodeError(f"expected a list of calls, found {type(body).__name__}")
    calls = []
    for elt in body.elts:
        if not isinstance(elt, ast.Call):
            raise DecodeError(f"expected a function call, found {ast.unparse(elt)!r}")
        calls.append(_resolve_call(elt))
    return calls


# ---------------------------------------------------------------- Java / JavaScript call syntax

_CALL_HEAD = re.compile(r"\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s*\(")
_OPEN, _CLOSE = "([{", ")]}"


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and string/char literals."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                raise DecodeError("unbalanced brackets in call arguments")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote or depth:
        raise DecodeError("unterminated literal or bracket in call arguments")
    parts.append(text[start:])
    return [p for p in (part.strip() for part in parts) if p]


def _source_value(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def decode_source_calls(raw: Any) -> Decoded:
    """Java / JavaScript calls ``f(a=1, b="x")``; values stay source text (literals unquoted)."""
    if not isinstance(raw, str):
        raise DecodeError(f"expected the model's text, found {type(raw).__name__}")
    text = raw.strip("`\n ")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    calls: Decoded = []
    for piece in _split_top_level(text):
        head = _CALL_HEAD.match(piece)
        if not head or not piece.endswith(")"):
            raise DecodeError(f"expected `name(arg=value, ...)`, found {piece[:80]!r}")
        args: dict[str, Any] = {}
        for arg in _split_top_level(piece[head.end() : -1]):
            name, eq, value = arg.partition("=")
            if not eq or not name.strip().isidentifier():
                raise DecodeError(f"expected `name=value`, found {arg[:80]!r}")
            if name.strip() in args:
                raise DecodeError(f"argument {name.strip()!r} given twice")
            args[name.strip()] = _source_value(value.strip())
        calls.append({head.group(1): args})
    if not calls:
        raise DecodeError("no function call found")
    return calls


# ---------------------------------------------------------------- FC handlers' JSON layout


def decode_json(raw: Any) -> Decoded:
    """A list of ``{name: arguments}``, arguments a JSON string or an object (FC handlers' layout)."""
    if not isinstance(raw, list):
        raise DecodeError(f"expected a list of {{name: arguments}}, found {type(raw).__name__}")
    calls: Decoded = []
    for item in raw:
        if not isinstance(item, dict) or not item:
            raise DecodeError(f"expected {{name: arguments}}, found {item!r:.80}")
        name = next(iter(item))
        arguments = item[name]
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise DecodeError(f"arguments of {name!r} are not JSON: {exc}") from exc
        calls.append({name: arguments})
    return calls


# ---------------------------------------------------------------- runtime formats


def decode_runtime_format(raw: Any, fmt: str, tools: list[dict[str, Any]] | None) -> Decoded:
    """Decode with one of the LLM runtime's tool-call formats (hermes, xlam, llama3, ...)."""
    if not isinstance(raw, str):
        raise DecodeError(f"expected the model's text, found {type(raw).__name__}")
    from datagen.llm.formats import get_format  # the runtime owns its formats

    parsed = get_format(fmt).parse(raw, tools or None)
    if not parsed.calls:
        reason = parsed.error.message if parsed.error else "no tool call"
        raise DecodeError(f"no tool call in {fmt} format: {reason}")
    return [{call["name"]: dict(call.get("arguments") or {})} for call in parsed.calls]


def decode_ast(raw: Any, fmt: str, language: str = "python", tools: list[dict] | None = None) -> Decoded:
    """Decode one single-turn result. Raises DecodeError when it holds no decodable call."""
    if fmt == JSON:
        return decode_json(raw)
    if fmt == PYTHON:
        return decode_source_calls(raw) if language in ("java", "javascript") else decode_python(raw)
    return decode_runtime_format(raw, fmt, tools)


def is_checker_shape(decoded: Any) -> bool:
    """``[{name: {param: value}}, ...]``; an empty list counts."""
    return isinstance(decoded, list) and all(
        isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict)
        for item in decoded
    )


def has_call(decoded: Any) -> bool:
    """Whether a decoded output holds at least one function call (BFCL's relevance rule)."""
    if not is_checker_shape(decoded) or len(decoded) == 0:
        return False
    return not (len(decoded) == 1 and len(decoded[0]) == 0)


def contains_call(raw: Any, fmt: str, tools: list[dict] | None = None) -> bool:
    try:
        return has_call(decode_ast(raw, fmt, "python", tools))
    except DecodeError:
        return False
