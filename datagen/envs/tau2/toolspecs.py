"""τ²-bench tools as our ``ToolSpec``: τ²'s own schema, kind and argument types, validated strictly.

τ² builds each tool's OpenAI schema and a parameters model from the method's signature and
docstring (``tau2.environment.tool.as_tool``); we take both from there, so the agent sees exactly the
schema τ²'s own agents see. τ² itself calls tools with the raw JSON arguments and no validation, so a
model can pass ``"5"`` for an int or an extra key and get a Python exception back. We validate first
(strict JSON mode: no string-to-number coercion, unknown keys rejected) and then hand τ² the same raw
JSON arguments it would have received, so a valid call behaves exactly as in τ².

τ² marks tools READ, WRITE, THINK or GENERIC; ours are read or write. THINK and GENERIC tools
(``calculate``, ``transfer_to_human_agents``) change no state, so they are ``read`` here.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from datagen.envs.tools import (
    ToolError,
    ToolKind,
    ToolSpec,
    check_plain_arguments,
    invalid_arguments,
    output_fields,
)

Requestor = Literal["assistant", "user"]


@dataclass(frozen=True)
class Tau2ToolSpec(ToolSpec):
    """A τ² tool: validated against τ²'s parameter types, called with the raw JSON arguments."""

    requestor: Requestor = "assistant"
    tau2_type: str = "read"  # τ²'s own mark: read, write, think or generic

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        check_plain_arguments(self.name, arguments)
        try:
            payload = json.dumps(arguments, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ToolError(f"arguments for {self.name} must be plain JSON values: {exc}") from exc
        try:
            self.args_model.model_validate_json(payload, strict=True)
        except ValidationError as exc:
            raise invalid_arguments(self.name, exc) from exc
        return json.loads(payload)  # a fresh copy: τ² tools may keep or mutate what they are given


def _strict_arguments_model(name: str, params: type[BaseModel]) -> type[BaseModel]:
    """τ²'s parameters model with unknown keys rejected (τ² would fail with a TypeError instead)."""
    fields = {field: (info.annotation, info) for field, info in params.model_fields.items()}
    return create_model(  # type: ignore[call-overload]
        f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )


_ID_IN_NAME = re.compile(r"([a-z]+_id)")


def _produced_fields(tool_name: str, returns: type[BaseModel]) -> frozenset[str]:
    annotation = returns.model_fields["returns"].annotation
    found = output_fields(annotation)
    # Lookups like find_user_id_by_email return the bare id as a string; the name says which.
    if annotation is str and (match := _ID_IN_NAME.search(tool_name)):
        found.add(match.group(1))
    return frozenset(found)


def _kind_of(tau2_type: str) -> ToolKind:
    return "write" if tau2_type == "write" else "read"


def specs_from_toolkit(toolkit: Any, requestor: Requestor) -> list[Tau2ToolSpec]:
    """One spec per tool of a τ² ``ToolKitBase``, in τ²'s order."""
    specs = []
    for name, tau2_tool in toolkit.get_tools().items():
        tau2_type = str(toolkit.tool_type(name).value)
        schema = tau2_tool.openai_schema
        params = tau2_tool.params
        specs.append(
            Tau2ToolSpec(
                name=name,
                kind=_kind_of(tau2_type),
                fn=getattr(type(toolkit), name),
                description=schema["function"]["description"],
                schema=schema,
                args_model=_strict_arguments_model(name, params),
                params=tuple(params.model_fields),
                produces=_produced_fields(name, tau2_tool.returns),
                requestor=requestor,
                tau2_type=tau2_type,
            )
        )
    return specs


# -- calculate without eval ------------------------------------------------------------------------
# τ²'s ``calculate`` runs ``eval`` on the model's expression (after a character whitelist). We never
# eval model output, so the adapter answers ``calculate`` itself with the same result string.

_CALC_CHARS = set("0123456789+-*/(). ")
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPONENT = 1000
# Integers are exact in Python and grow without limit, so ((9**999)**999)**999 would run for minutes
# inside a tool call (and block every episode on the event loop). A float cannot hold more than
# 1,024 bits, so τ²'s own calculate fails on any larger result; 4,096 bits leaves room for
# intermediate values that a division brings back, and keeps every step to microseconds.
_MAX_BITS = 4096


def _check_size(op: ast.operator, left: float | int, right: float | int) -> None:
    """Refuses an operation before it runs if its integer result would exceed ``_MAX_BITS``."""
    if isinstance(op, ast.Pow) and abs(right) > _MAX_EXPONENT:
        raise ValueError(f"exponent {right} is too large (at most {_MAX_EXPONENT})")
    if not (isinstance(left, int) and isinstance(right, int)):
        return  # floats overflow on their own (OverflowError), at once
    if isinstance(op, ast.Pow) and right > 0:
        bits = left.bit_length() * right  # at least as many as the result has
    elif isinstance(op, ast.Mult):
        bits = left.bit_length() + right.bit_length()
    else:
        bits = max(left.bit_length(), right.bit_length()) + 1
    if bits > _MAX_BITS:
        raise ValueError(f"the result is too large to calculate (over {_MAX_BITS} bits)")


def _evaluate_node(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate_node(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate_node(node.left), _evaluate_node(node.right)
        _check_size(node.op, left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate_node(node.operand))
    raise ValueError(f"unsupported expression element: {type(node).__name__}")


def calculate(expression: str) -> str:
    """What τ²'s ``calculate`` returns for ``expression``: the value rounded to 2 places, as text."""
    if not all(char in _CALC_CHARS for char in expression):
        raise ValueError("Invalid characters in expression")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression: {exc.msg}") from exc
    return str(round(float(_evaluate_node(tree)), 2))
