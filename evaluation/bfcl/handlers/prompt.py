"""Prompt-mode decoding: calls written as Python call syntax, ``[f(a=1), g(b="x")]``.

Follows ``bfcl_eval/model_handler/utils.py`` (``default_decode_ast_prompting``, ``ast_parse``,
``resolve_ast_call``, ``resolve_ast_by_type``, ``default_decode_execute_prompting``): the text is
stripped of backticks, newlines and spaces, wrapped in brackets if needed, stripped of single
quotes and parsed with :mod:`ast`. Each argument node is read the way BFCL reads it: literals
as they are, a name as its spelling, a call with keywords as a nested ``{name: {...}}``, one
without as its source text, ``-x`` as the negated literal whatever the unary operator, and
arithmetic (which BFCL passes to ``eval``) through :mod:`literals`, with bounded work. Positional
arguments are dropped, as BFCL does. Java and JavaScript items keep their values as source text,
read with the languages' tree-sitter grammars as BFCL reads them (:mod:`sourcelang`).

Phi's prompt handler (``local_inference/phi.py``) first drops a leading ```` ```json ```` or
```` ```python ```` fence.
"""

from __future__ import annotations

import ast
from typing import Any

from evaluation.bfcl.handlers.base import Decoded, DecodeError, failures_are_decode_errors, short
from evaluation.bfcl.handlers.execution import prompt_strings
from evaluation.bfcl.handlers.literals import LiteralError, evaluate, parse_quietly
from evaluation.bfcl.handlers.sourcelang import decode_java, decode_javascript


def _unparse(node: ast.AST) -> str:
    return ast.unparse(node)


def _resolve_value(node: ast.AST | None) -> Any:
    """One argument value, following resolve_ast_by_type node type by node type."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        # BFCL negates the operand's `.value` whatever the operator: only literals have one.
        if not isinstance(node.operand, ast.Constant):
            raise DecodeError(f"unsupported unary operand: {_unparse(node)[:80]!r}")
        return -node.operand.value
    if isinstance(node, ast.List):
        return [_resolve_value(elt) for elt in node.elts]
    if isinstance(node, ast.Dict):
        return {_resolve_value(k): _resolve_value(v) for k, v in zip(node.keys, node.values, strict=False)}
    if isinstance(node, ast.BinOp):
        try:
            return evaluate(node)
        except LiteralError as exc:
            raise DecodeError(f"cannot evaluate argument expression {_unparse(node)[:80]!r}: {exc}") from exc
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return resolve_call(node) if node.keywords else _unparse(node)
    if isinstance(node, ast.Tuple):
        return tuple(_resolve_value(elt) for elt in node.elts)
    if isinstance(node, ast.Subscript):
        return _unparse(node.value) + "[" + _unparse(node.slice) + "]"
    if node is None:  # `{**mapping}` inside a dict literal
        raise DecodeError("unsupported `**` unpacking in a dict argument")
    raise DecodeError(f"unsupported value type {type(node).__name__} in {_unparse(node)[:80]!r}")


def _call_name(func: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def resolve_call(call: ast.Call) -> dict[str, dict[str, Any]]:
    """``{name: {keyword: value}}`` of one call node (BFCL's ``resolve_ast_call``)."""
    return {_call_name(call.func): {kw.arg: _resolve_value(kw.value) for kw in call.keywords}}


def _bracketed(raw: str) -> str:
    return _with_brackets(raw).strip().strip("'")


def python_calls(text: str) -> Decoded:
    """The calls of one Python expression: a call, or a list/tuple/set of calls (BFCL's ``ast_parse``)."""
    try:
        body = parse_quietly(text)
    except (SyntaxError, ValueError, MemoryError) as exc:
        raise DecodeError(f"not Python call syntax: {short(exc)}") from exc
    if isinstance(body, ast.Call):
        return [resolve_call(body)]
    if not isinstance(body, (ast.List, ast.Tuple, ast.Set)):
        raise DecodeError(f"expected a list of calls, found {type(body).__name__}")
    calls = []
    for elt in body.elts:
        if not isinstance(elt, ast.Call):
            raise DecodeError(f"expected a function call, found {_unparse(elt)[:80]!r}")
        calls.append(resolve_call(elt))
    return calls


@failures_are_decode_errors
def decode_python(raw: Any) -> Decoded:
    """Calls written in Python syntax, as BFCL's prompt-mode handlers decode them."""
    if not isinstance(raw, str):
        raise DecodeError(f"expected the model's text, found {type(raw).__name__}")
    return python_calls(_bracketed(raw))


# ---------------------------------------------------------------- Java / JavaScript call syntax


def _with_brackets(raw: str) -> str:
    text = raw.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    return text


@failures_are_decode_errors
def decode_source_calls(raw: Any, language: str = "java") -> Any:
    """Java / JavaScript calls ``f(a=1, b="x")`` as BFCL reads them: the bracketed text without its
    first and last character, through the language's grammar (:mod:`sourcelang`)."""
    if not isinstance(raw, str):
        raise DecodeError(f"expected the model's text, found {type(raw).__name__}")
    source = _with_brackets(raw)[1:-1]
    return decode_java(source) if language == "java" else decode_javascript(source)


# ---------------------------------------------------------------- the decoders


def decode_ast(raw: Any, language: str = "python") -> Decoded:
    return decode_source_calls(raw, language) if language in ("java", "javascript") else decode_python(raw)


@failures_are_decode_errors
def decode_execute(raw: Any) -> list[str]:
    return prompt_strings(decode_python(raw))


_PHI_FENCES = ("```json", "```python")


def _drop_phi_fence(text: str) -> str:
    for fence in _PHI_FENCES:
        if text.startswith(fence):
            text = text[len(fence) :]
    return text


@failures_are_decode_errors
def decode_ast_phi(raw: Any, language: str = "python") -> Decoded:
    # phi.py strips the text before looking for the fence in decode_ast (not in decode_execute).
    return decode_ast(_drop_phi_fence(raw.strip()), language)


@failures_are_decode_errors
def decode_execute_phi(raw: Any) -> list[str]:
    return decode_execute(_drop_phi_fence(raw))
