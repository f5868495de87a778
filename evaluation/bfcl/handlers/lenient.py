"""``--lenient``: the LLM runtime's forgiving parsers (``datagen.llm.formats``) instead of BFCL's.

They find calls inside prose and code fences, accept ``<tool_call>`` blocks without their newlines
or cut off at the token limit, JSON lists side by side, and FC arguments already decoded to a dict.
Scores read this way are not comparable with the leaderboard's; score files say which was used.
"""

from __future__ import annotations

import json
from typing import Any

from evaluation.bfcl.handlers.base import Decoded, DecodeError, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import fc_strings


def _runtime_calls(raw: Any, runtime_format: str) -> Decoded:
    if not isinstance(raw, str):
        raise DecodeError(f"expected the model's text, found {type(raw).__name__}")
    from datagen.llm.formats import get_format  # the runtime owns its formats

    parsed = get_format(runtime_format).parse(raw, None)
    if not parsed.calls:
        reason = parsed.error.message if parsed.error else "no tool call"
        raise DecodeError(f"no tool call in {runtime_format} format: {reason}")
    return [{call["name"]: dict(call.get("arguments") or {})} for call in parsed.calls]


def runtime_decoders(runtime_format: str) -> tuple[Any, Any]:
    """(decode_ast, decode_execute) through one of the runtime's text formats."""

    @failures_are_decode_errors
    def decode_ast(raw: Any, language: str = "python") -> Decoded:
        return _runtime_calls(raw, runtime_format)

    @failures_are_decode_errors
    def decode_execute(raw: Any) -> list[str]:
        return fc_strings(_runtime_calls(raw, runtime_format))

    return decode_ast, decode_execute


def _fc_calls(raw: Any) -> Decoded:
    if not isinstance(raw, list):
        raise DecodeError(f"expected a list of {{name: arguments}}, found {type(raw).__name__}")
    calls: Decoded = []
    for item in raw:
        if not isinstance(item, dict) or not item:
            raise DecodeError(f"expected {{name: arguments}}, found {type(item).__name__}")
        name, arguments = next(iter(item.items()))
        calls.append({name: json.loads(arguments) if isinstance(arguments, str) else arguments})
    return calls


@failures_are_decode_errors
def decode_ast_fc(raw: Any, language: str = "python") -> Decoded:
    """The FC layout, arguments a JSON string or already a dict."""
    return _fc_calls(raw)


@failures_are_decode_errors
def decode_execute_fc(raw: Any) -> list[str]:
    return fc_strings(_fc_calls(raw))
