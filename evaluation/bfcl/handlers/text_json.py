"""Open models whose raw text holds JSON calls, each read exactly as its BFCL handler reads it.

* ``xlam`` — ``local_inference/salesforce_qwen.py`` and ``salesforce_llama.py``: the whole text
  is parsed as JSON (one object becomes a list of one); if that is not JSON, the text is split on
  ``;`` and every piece must be JSON. Each call is ``{"name", "arguments"}``. Nothing else is
  accepted: no code fences, no prose, no two lists side by side.
* ``hermes`` — ``local_inference/qwen_fc.py`` (and ``granite_4.py``, the same code): only the
  bodies of ``<tool_call>\\n...\\n</tool_call>`` (with those newlines) are read; a body that is not
  JSON is skipped; every call needs ``"name"`` and a dict ``"arguments"``.
* ``llama3`` — ``local_inference/llama_3_1.py``: ``<|python_tag|>`` removed; with a ``;`` the
  pieces are JSON objects, otherwise the text is a Python expression (BFCL ``eval``s it; we read it
  as a literal: JSON's ``true``/``false``/``null`` are names there, and fail). Calls are
  ``{"name", "parameters"}``.
* ``hammer`` — ``local_inference/hammer.py``: every ```` ``` ```` removed, then the text must be a
  JSON list of ``{"name", "arguments"}``; text that is not JSON decodes to no calls.
* ``granite`` — ``local_inference/granite.py`` (granite-20b-functioncalling): the text split on
  ``<function_call>``; each piece that is JSON is a ``{"name", "arguments"}`` call (name
  ``no_function`` means none), each that is not stays as text in the output.
"""

from __future__ import annotations

import json
import re
from typing import Any

from evaluation.bfcl.handlers.base import Decoded, DecodeError, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import fc_strings
from evaluation.bfcl.handlers.literals import evaluate_text


def _arguments_string(arguments: Any, separator: str = ",") -> str:
    return separator.join(f"{k}={repr(v)}" for k, v in arguments.items())


# ---------------------------------------------------------------- xLAM


def _xlam_calls(raw: Any) -> list[Any]:
    try:
        calls = json.loads(raw)
    except json.JSONDecodeError:
        # Only a JSON syntax error falls back to `;`-separated objects; other failures (an int
        # past 4,300 digits, deep nesting, text that is not a string) fail the decode outright.
        return [json.loads(piece.strip()) for piece in raw.split(";")]
    return calls if isinstance(calls, list) else [calls]


@failures_are_decode_errors
def decode_ast_xlam(raw: Any, language: str = "python") -> Decoded:
    return [{call["name"]: call["arguments"]} for call in _xlam_calls(raw)]


@failures_are_decode_errors
def decode_execute_xlam(raw: Any) -> list[str]:
    return [f"{call['name']}({_arguments_string(call['arguments'])})" for call in _xlam_calls(raw)]


# ---------------------------------------------------------------- Qwen FC / Hermes

_TOOL_CALL = re.compile(r"<tool_call>\n(.*?)\n</tool_call>", re.DOTALL)


def _hermes_calls(raw: Any) -> list[dict]:
    calls = []
    for body in _TOOL_CALL.findall(raw):
        try:
            calls.append(json.loads(body))
        except (ValueError, RecursionError):  # qwen_fc.py skips any body that does not load
            continue
    if any(type(call) is not dict for call in calls):
        raise DecodeError("a <tool_call> body is JSON but not an object")
    return calls


@failures_are_decode_errors
def decode_ast_hermes(raw: Any, language: str = "python") -> Decoded:
    return [{call["name"]: dict(call["arguments"].items())} for call in _hermes_calls(raw)]


@failures_are_decode_errors
def decode_execute_hermes(raw: Any) -> list[str]:
    return fc_strings([{call["name"]: call["arguments"]} for call in _hermes_calls(raw)])


# ---------------------------------------------------------------- Llama 3.1 JSON


def _llama_calls(raw: Any) -> Any:
    text = raw.replace("<|python_tag|>", "")
    if ";" in text:
        return [json.loads(piece) for piece in text.split(";")]
    calls = evaluate_text(text)
    return [calls] if type(calls) is dict else calls


@failures_are_decode_errors
def decode_ast_llama3(raw: Any, language: str = "python") -> Decoded:
    return [{call["name"]: call["parameters"]} for call in _llama_calls(raw)]


@failures_are_decode_errors
def decode_execute_llama3(raw: Any) -> list[str]:
    return [f"{call['name']}({_arguments_string(call['parameters'])})" for call in _llama_calls(raw)]


# ---------------------------------------------------------------- Hammer


def _hammer_value(raw: Any) -> Any:
    text = raw.replace("```", "")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # hammer.py: anything that does not load is no call
        return []


@failures_are_decode_errors
def decode_ast_hammer(raw: Any, language: str = "python") -> Decoded:
    return [{call["name"]: call["arguments"]} for call in _hammer_value(raw)]


@failures_are_decode_errors
def decode_execute_hammer(raw: Any) -> list[str]:
    value = _hammer_value(raw)
    calls = (
        value if isinstance(value, list) else value.get("tool_calls", []) if isinstance(value, dict) else []
    )
    if not isinstance(calls, list):
        calls = [calls]
    strings = []
    for call in calls:
        if isinstance(call, dict):  # hammer.py skips entries that are not objects
            arguments = call.get("arguments", {})
            strings.append(f"{call.get('name', '')}({_arguments_string(arguments, ', ')})")
    return strings


# ---------------------------------------------------------------- granite-20b-functioncalling


def _granite_pieces(raw: Any) -> list[Any]:
    """Each piece as (loaded JSON) or (its text), in order."""
    pieces = []
    for piece in (p.strip() for p in raw.split("<function_call>")):
        if not piece:
            continue
        try:
            pieces.append((True, json.loads(piece)))
        except (ValueError, RecursionError):
            pieces.append((False, piece))
    return pieces


@failures_are_decode_errors
def decode_ast_granite(raw: Any, language: str = "python") -> Decoded:
    decoded: Decoded = []
    for loaded, value in _granite_pieces(raw):
        if not loaded:
            decoded.append(value)
            continue
        name = value.get("name", "").strip()
        decoded.append(
            "No function is called" if name == "no_function" else {name: value.get("arguments", {})}
        )
    return decoded


@failures_are_decode_errors
def decode_execute_granite(raw: Any) -> list[str]:
    strings = []
    for loaded, value in _granite_pieces(raw):
        if not loaded:
            strings.append(value)
            continue
        name = value.get("name", "").strip()
        arguments = value.get("arguments", {})
        strings.append(
            "No function is called" if name == "no_function" else f"{name}({_arguments_string(arguments)})"
        )
    return strings
