"""BFCL's execution strings: how each handler's ``decode_execute`` writes a model's calls, read
back with ``ast`` into :class:`Call` objects for our multi-turn executor.

BFCL writes decoded calls as strings such as ``cd(folder='tmp')`` (``model_handler/utils.py``:
``convert_to_function_call`` for FC layouts, ``decoded_output_to_execution_list`` with
``parse_nested_value`` for prompt mode) and its multi-turn checker ``eval``s them on the backend
instances (``eval_checker/multi_turn_eval/multi_turn_utils.py``). Going through the same strings
keeps every quirk of that round trip: a value whose ``repr`` does not read back (``nan``, a dict of
dicts written as a nested call) fails when run, one whose ``repr`` raises (an int of more than
4,300 digits) fails the decode. We read the strings as calls with literal arguments only; what
BFCL's ``eval`` would run beyond that (a nested call) is a failed call here.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

from datagen.llm.formats.python_calls import dotted_name
from evaluation.bfcl.handlers.base import short
from evaluation.bfcl.handlers.literals import LiteralError, evaluate, parse_quietly


@dataclass
class Call:
    """One call to run on the backends; ``error`` says why it cannot run (its result is that error)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()
    error: str = ""

    def render(self) -> str:
        parts = [short(a) for a in self.args] + [f"{k}={short(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


def call_string(name: Any, arguments: Any, separator: str = ",") -> str:
    """One execution string, ``name(k=repr(v),...)``, as BFCL's handlers write them (``repr`` of a
    value that has none, an int past 4,300 digits, raises: the decode fails)."""
    return f"{name}({separator.join(f'{k}={v!r}' for k, v in arguments.items())})"


def fc_strings(calls: Any) -> list[str]:
    """BFCL's ``convert_to_function_call``: ``[{name: arguments}]`` (arguments a JSON string or a dict)."""
    if type(calls) is dict:
        calls = [calls]
    strings = []
    for call in calls:
        for name, value in call.items():
            if type(value) is str:
                value = json.loads(value)
            strings.append(call_string(name, value))
    return strings


def _nested(value: Any) -> str:
    # BFCL's parse_nested_value: a dict whose values are all dicts is written as a nested call
    # (an empty dict too, which then fails on its missing name), other dicts with quoted keys.
    if isinstance(value, dict):
        if all(isinstance(v, dict) for v in value.values()):
            name = list(value.keys())[0]
            return f"{name}({', '.join(f'{k}={_nested(v)}' for k, v in value[name].items())})"
        return "{" + ", ".join(f"'{k}': {_nested(v)}" for k, v in value.items()) + "}"
    return repr(value)


def prompt_strings(decoded: Any) -> list[str]:
    """BFCL's ``decoded_output_to_execution_list`` over a prompt-mode decode."""
    strings = []
    for call in decoded:
        for name, value in call.items():
            strings.append(f"{name}({', '.join(f'{k}={_nested(v)}' for k, v in value.items())})")
    return strings


def parse_execution(text: str) -> Call:
    """One execution string as a call with literal arguments; a Call carrying an error otherwise."""
    try:
        node = parse_quietly(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return Call(text[:80], error=f"{type(exc).__name__}: {short(exc)}")
    if not isinstance(node, ast.Call):
        return Call(text[:80], error="not a function call")
    name = dotted_name(node.func)
    if name is None:
        return Call(text[:80], error="the called object is not a name")
    try:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise LiteralError("argument unpacking")
        args = tuple(evaluate(arg) for arg in node.args)
        kwargs = {kw.arg: evaluate(kw.value) for kw in node.keywords}
    except LiteralError as exc:
        return Call(name, error=f"an argument is not a literal value ({short(exc)})")
    return Call(name, kwargs, args)


def is_empty(strings: list[str]) -> bool:
    """BFCL's ``is_empty_execute_response``: a step whose execution list holds no call."""
    return not strings or (len(strings) == 1 and len(strings[0]) == 0)


def calls_from_strings(strings: list[str]) -> list[Call]:
    """The calls of one step; none when BFCL counts the step as empty."""
    return [] if is_empty(strings) else [parse_execution(text) for text in strings]
