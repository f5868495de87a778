"""Python literal expressions read out of model text, with bounded work. Never ``eval``.

BFCL reads some model output with Python's ``eval``: prompt-mode arguments written as arithmetic
(``model_handler/utils.py``, ``resolve_ast_by_type``: ``eval(ast.unparse(node))`` for a ``BinOp``)
and Llama 3.1's JSON-ish output (``local_inference/llama_3_1.py``: ``eval(result)``). We evaluate
the same syntax tree over the values Python would build (numbers, strings, bytes, lists, tuples,
sets, dicts, with the unary and binary operators), and refuse everything else (names, calls,
comprehensions, lambdas...), which for BFCL's ``eval`` is a ``NameError`` or worse.

Work is bounded by the size of what would be built, not by exponents alone: an integer past
``MAX_BITS`` or a sequence past ``MAX_LENGTH`` is not computed. BFCL would compute it (``(10**4000)
**4000`` takes 20 s) and then never match an answer with it; we stand in :class:`TooLarge`, which
matches nothing, counts as a value of a decoded call, and cannot be written back as an argument.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from typing import Any

# Bigger intermediate integers are not computed: 65,536 bits is ~19,700 digits, and one
# multiplication at that size takes well under a millisecond.
MAX_BITS = 1 << 16
MAX_LENGTH = 1 << 20  # strings, bytes, lists and tuples longer than this are not built
MAX_NODES = 100_000  # syntax-tree nodes one expression may hold


class LiteralError(ValueError):
    """The expression is not a literal we evaluate, or evaluating it fails as Python's would."""


class TooLarge:
    """A value BFCL's ``eval`` would build but we do not: it equals nothing but itself, and like an
    int of more than 4,300 digits it has no ``repr`` (so it cannot be written back as an argument)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        raise ValueError(f"{self.describe()}: it cannot be written out")

    def describe(self) -> str:
        return (
            f"an {self.what} too large to compute"
            if self.what == "integer"
            else f"a {self.what} too large to build"
        )


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.MatMult: operator.matmul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert, ast.Not: operator.not_}
_SEQUENCES = (str, bytes, list, tuple)
# printf-style formats that could build a huge string: `*` widths, or widths of 7+ digits.
_WIDE_FORMAT = re.compile(r"%[^a-zA-Z%]*(\*|\d{7,})")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, _SEQUENCES) else 0


def _too_large(op: type, left: Any, right: Any) -> str | None:
    """What the operation would build past the bounds, or None when it is safe to compute."""
    if isinstance(left, bool) or isinstance(right, bool):
        left, right = (
            int(left) if isinstance(left, bool) else left,
            int(right) if isinstance(right, bool) else right,
        )
    ints = isinstance(left, int) and isinstance(right, int)
    if ints and op is ast.Pow and right > 0 and abs(left) > 1:
        # |left| ** right has at least (bit_length - 1) * right bits.
        return "integer" if (left.bit_length() - 1) * right > MAX_BITS else None
    if ints and op is ast.Mult:
        return "integer" if left.bit_length() + right.bit_length() > MAX_BITS else None
    if ints and op is ast.LShift and right > 0:
        return "integer" if left.bit_length() + right > MAX_BITS else None
    if op is ast.Mult and (isinstance(left, int) or isinstance(right, int)):
        count, seq = (left, right) if isinstance(left, int) else (right, left)
        return (
            "sequence" if isinstance(seq, _SEQUENCES) and _length(seq) * max(count, 0) > MAX_LENGTH else None
        )
    if op is ast.Add and _length(left) + _length(right) > MAX_LENGTH:
        return "sequence"
    if op is ast.Mod and isinstance(left, (str, bytes)):
        text = left if isinstance(left, str) else left.decode("latin-1")
        return "string" if _WIDE_FORMAT.search(text) else None
    return None


class _Evaluator:
    """One expression's evaluation, with a budget of syntax-tree nodes."""

    def __init__(self) -> None:
        self.nodes = 0

    def value(self, node: ast.AST) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise LiteralError(f"expression has more than {MAX_NODES} parts")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List):
            return [self.value(elt) for elt in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.value(elt) for elt in node.elts)
        if isinstance(node, ast.Set):
            return self._hashing(lambda: {self.value(elt) for elt in node.elts})
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise LiteralError("`**` unpacking in a dict literal")
            return self._hashing(
                lambda: {self.value(k): self.value(v) for k, v in zip(node.keys, node.values, strict=True)}
            )
        if isinstance(node, ast.UnaryOp):
            return self._apply(_UNARY[type(node.op)], self.value(node.operand))
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        raise LiteralError(f"{type(node).__name__} is not a literal: {_source(node)}")

    def binary(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        if isinstance(left, TooLarge) or isinstance(right, TooLarge):
            if isinstance(node.op, ast.Div):  # true division of a huge int overflows a float
                raise LiteralError("integer too large to convert to float")
            return left if isinstance(left, TooLarge) else right
        what = _too_large(type(node.op), left, right)
        if what:
            return TooLarge(what)
        return self._apply(_BINARY[type(node.op)], left, right)

    @staticmethod
    def _apply(function: Any, *operands: Any) -> Any:
        if any(isinstance(o, TooLarge) for o in operands):
            return next(o for o in operands if isinstance(o, TooLarge))
        try:
            return function(*operands)
        except (ArithmeticError, TypeError, ValueError, MemoryError, RecursionError) as exc:
            raise LiteralError(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _hashing(build: Any) -> Any:
        try:
            return build()
        except TypeError as exc:  # an unhashable key or set member: `{[1]: 2}`
            raise LiteralError(f"TypeError: {exc}") from exc


def _source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:80]
    except (RecursionError, ValueError):
        return type(node).__name__


def evaluate(node: ast.AST) -> Any:
    """The value Python would compute for a literal expression; LiteralError otherwise."""
    try:
        return _Evaluator().value(node)
    except RecursionError as exc:
        raise LiteralError("expression nested too deeply") from exc


def parse_quietly(text: str) -> ast.expr:
    """``ast.parse(text, mode="eval").body`` without the warnings Python emits for odd source
    (invalid escape sequences...): model text is data, its oddities are not our warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, mode="eval").body


def parse_statements_quietly(text: str) -> list[ast.stmt]:
    """``ast.parse(text).body`` (a module's statements), quietly as :func:`parse_quietly`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text).body


def parse_expression(text: str) -> ast.expr:
    """``text`` parsed as one Python expression, as ``eval`` parses a string; LiteralError otherwise."""
    try:
        # eval() drops leading spaces and tabs (not newlines) before compiling.
        return parse_quietly(text.lstrip(" \t"))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise LiteralError(f"not a Python expression: {type(exc).__name__}: {exc}") from exc


def evaluate_text(text: str) -> Any:
    """What BFCL's ``eval(text)`` gives for a literal expression (LiteralError for anything else)."""
    return evaluate(parse_expression(text))
