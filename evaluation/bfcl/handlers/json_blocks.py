"""Open models whose text holds ``{"name", "arguments"}`` JSON in one block, each family finding the
block its own way (``local_inference/...`` in the installed ``bfcl-eval``).

* ``bitagent`` — ``bitagent.py``: the whole text is JSON, a list of calls or one call; no
  ``;``-separated fallback (unlike xLAM), no fences, no prose.
* ``falcon`` — ``falcon_fc.py``: only the first ``<tool_call>`` block is read (to its
  ``</tool_call>`` or the end of the text); a body fenced with ```` ``` ```` loses its backticks and a
  leading ``json``; the body is a JSON list of calls or one call. No ``<tool_call>`` fails the item.
* ``thinkagent`` — ``think_agent.py``: every ``'`` becomes ``"``, then the text after the first
  ``</think>`` is a JSON list of calls (no ``</think>`` means no calls). Its ``decode_execute`` fails
  on any call (it builds text where it then reads a dict), so multi-turn steps never run a call.
* ``glm`` — ``glm.py`` (GLM-4-9b-chat): the function name on the first line and its arguments as
  JSON on the second (further lines ignored); a single line is kept as text, which is no call.
"""

from __future__ import annotations

import json
from typing import Any

from evaluation.bfcl.handlers.base import Decoded, DecodeError, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import call_string, fc_strings


def _named_calls(value: Any) -> list[tuple[Any, Any]]:
    """(name, arguments) of each ``{"name", "arguments"}`` call in a loaded list (or one call)."""
    calls = value if isinstance(value, list) else [value]
    return [(call["name"], call["arguments"]) for call in calls]


# ---------------------------------------------------------------- BitAgent


@failures_are_decode_errors
def decode_ast_bitagent(raw: Any, language: str = "python") -> Decoded:
    return [{name: arguments} for name, arguments in _named_calls(json.loads(raw))]


@failures_are_decode_errors
def decode_execute_bitagent(raw: Any) -> list[str]:
    return [call_string(name, arguments) for name, arguments in _named_calls(json.loads(raw))]


# ---------------------------------------------------------------- Falcon 3 FC

_OPEN, _CLOSE, _FENCE = "<tool_call>", "</tool_call>", "```"


def _falcon_body(raw: Any) -> Any:
    if _OPEN not in raw:
        raise DecodeError("no <tool_call> in the output")
    body = raw.split(_OPEN)[1].split(_CLOSE)[0].strip()
    if body.startswith(_FENCE) and body.endswith(_FENCE):
        body = body.strip("`").strip()
        if body.startswith("json"):
            body = body[len("json") :].strip()
    return json.loads(body)


@failures_are_decode_errors
def decode_ast_falcon(raw: Any, language: str = "python") -> Decoded:
    return [{name: arguments} for name, arguments in _named_calls(_falcon_body(raw))]


@failures_are_decode_errors
def decode_execute_falcon(raw: Any) -> list[str]:
    return [call_string(name, arguments) for name, arguments in _named_calls(_falcon_body(raw))]


# ---------------------------------------------------------------- ThinkAgent


def _think_agent_value(raw: Any) -> Any:
    text = raw.strip().replace("'", '"')
    _, found, after = text.partition("</think>")
    return json.loads(after.strip() if found else "[]")


@failures_are_decode_errors
def decode_ast_thinkagent(raw: Any, language: str = "python") -> Decoded:
    return [{call["name"]: call["arguments"]} for call in _think_agent_value(raw)]


@failures_are_decode_errors
def decode_execute_thinkagent(raw: Any) -> list[str]:
    for call in _think_agent_value(raw):
        call["name"], call["arguments"]  # noqa: B018 - looked up (and failing) as the handler does
        raise DecodeError("think_agent.py's decode_execute fails on every call")
    return []


# ---------------------------------------------------------------- GLM-4 (local)


@failures_are_decode_errors
def decode_ast_glm(raw: Any, language: str = "python") -> Decoded:
    lines = raw.split("\n")
    if len(lines) == 1:
        return [lines[0]]
    return [{lines[0]: json.loads(lines[1])}]


@failures_are_decode_errors
def decode_execute_glm(raw: Any) -> list[str]:
    lines = raw.split("\n")
    if len(lines) == 1:
        if lines[0]:
            raise DecodeError("one line, no arguments: glm.py's decode_execute fails on it")
        return []
    return fc_strings([{lines[0]: lines[1]}])
