"""API handlers that store a structured list of calls (not text), each family with its own keys.

* ``cohere`` — ``api_inference/cohere.py``: the stored value is a list of
  ``{"tool_name", "parameters"}``; anything that is not a list decodes to no calls (a text reply).
  ``decode_execute`` writes each call with its parameters' ``repr``.
* ``gemini`` — ``api_inference/gemini.py`` in FC mode: the stored ``[{name: {param: value}}]`` is
  used as it is, a value that is not a list wrapped in one; ``decode_execute`` writes each
  ``{name: arguments}`` entry, arguments taken as a dict (no JSON string is loaded).
* ``mining`` — ``api_inference/mining.py`` (and ``dm_cito.py``): the reply's JSON list of
  ``{"name", "arguments"}``, stored already parsed. ``decode_ast`` reads every element's keys
  (a text that did not parse fails); ``decode_execute`` skips elements that are not objects.
"""

from __future__ import annotations

from typing import Any

from evaluation.bfcl.handlers.base import Decoded, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import call_string

# ---------------------------------------------------------------- Cohere


@failures_are_decode_errors
def decode_ast_cohere(raw: Any, language: str = "python") -> Decoded:
    if not isinstance(raw, list):
        return []
    return [{call["tool_name"]: call["parameters"]} for call in raw]


@failures_are_decode_errors
def decode_execute_cohere(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        return []
    return [call_string(call["tool_name"], call["parameters"]) for call in raw]


# ---------------------------------------------------------------- Gemini (FC)


@failures_are_decode_errors
def decode_ast_gemini(raw: Any, language: str = "python") -> Decoded:
    return raw if type(raw) is list else [raw]


@failures_are_decode_errors
def decode_execute_gemini(raw: Any) -> list[str]:
    # No wrapping here (unlike decode_ast): a stored text is iterated and fails on its first letter.
    return [call_string(name, arguments) for call in raw for name, arguments in call.items()]


# ---------------------------------------------------------------- Mining / DM-Cito


@failures_are_decode_errors
def decode_ast_mining(raw: Any, language: str = "python") -> Decoded:
    # A text or an object is iterated too: its letters or keys fail on their first subscript.
    return [{call["name"]: call["arguments"]} for call in raw]


@failures_are_decode_errors
def decode_execute_mining(raw: Any) -> list[str]:
    return [
        call_string(call.get("name", ""), call.get("arguments", {}), ", ")
        for call in raw
        if isinstance(call, dict)
    ]
