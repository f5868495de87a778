"""Python call syntax inside each family's own wrapper, read as prompt mode reads the calls
(:mod:`.prompt`) once the wrapper is taken off.

* ``nemotron`` — ``api_inference/nemotron.py``: the text of the first ``<TOOLCALL>...</TOOLCALL>``
  (no such block: no calls), then BFCL's prompt-mode decoding.
* ``gemini_prompt`` — ``api_inference/gemini.py`` in prompt mode: every ```` ```tool_code\\n ```` and
  ```` \\n``` ```` removed, then prompt-mode decoding.
* ``gorilla`` — ``api_inference/gorilla.py``: the text wrapped in ``[`` ``]`` as it is (no stripping)
  and parsed; its ``decode_execute`` hands the parser a language it does not know, so it fails on
  every output: a multi-turn step never runs a call.
* ``minicpm`` — ``local_inference/minicpm_fc.py``: after an optional ``<|thought_start|>``...
  ``<|thought_end|>``, the statements between ``<|tool_call_start|>`` and the last
  ``<|tool_call_end|>`` (a ```` ```python ```` fence dropped) are each a call; if any statement is
  not one, or any value cannot be read, the whole output is its text, which is no call.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from evaluation.bfcl.handlers import prompt
from evaluation.bfcl.handlers.base import DECODE_FAILURES, Decoded, DecodeError, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import call_string
from evaluation.bfcl.handlers.literals import parse_statements_quietly
from evaluation.bfcl.handlers.sourcelang import decode_java, decode_javascript

# ---------------------------------------------------------------- Nemotron

_TOOLCALL = re.compile(r"<TOOLCALL>(.*?)</TOOLCALL>", re.DOTALL)


@failures_are_decode_errors
def decode_ast_nemotron(raw: Any, language: str = "python") -> Decoded:
    found = _TOOLCALL.search(raw)
    return prompt.decode_ast(found.group(1), language) if found else []


@failures_are_decode_errors
def decode_execute_nemotron(raw: Any) -> list[str]:
    found = _TOOLCALL.search(raw)
    return prompt.decode_execute(found.group(1)) if found else []


# ---------------------------------------------------------------- Gemini (prompt mode)


def _without_tool_code_fences(raw: Any) -> Any:
    return raw.replace("```tool_code\n", "").replace("\n```", "")


@failures_are_decode_errors
def decode_ast_gemini_prompt(raw: Any, language: str = "python") -> Decoded:
    return prompt.decode_ast(_without_tool_code_fences(raw), language)


@failures_are_decode_errors
def decode_execute_gemini_prompt(raw: Any) -> list[str]:
    return prompt.decode_execute(_without_tool_code_fences(raw))


# ---------------------------------------------------------------- Gorilla OpenFunctions


@failures_are_decode_errors
def decode_ast_gorilla(raw: Any, language: str = "python") -> Decoded:
    wrapped = "[" + raw + "]"
    if language == "java":
        return decode_java(raw)
    if language == "javascript":
        return decode_javascript(raw)
    return prompt.python_calls(wrapped.strip().strip("'"))


@failures_are_decode_errors
def decode_execute_gorilla(raw: Any) -> list[str]:
    "[" + raw + "]"  # noqa: B018 - a stored value that is not text fails here first, as in gorilla.py
    raise DecodeError("gorilla.py's decode_execute fails on every output (it names no language)")


# ---------------------------------------------------------------- MiniCPM3 FC

_THOUGHT_START, _THOUGHT_END = "<|thought_start|>", "<|thought_end|>"
_CALLS_START, _CALLS_END = "<|tool_call_start|>", "<|tool_call_end|>"


def _minicpm_statements(text: str) -> list[dict[str, Any]] | None:
    """The calls of the tool-call block, or None where the handler gives up and keeps the text."""
    text = text.strip()
    if text.startswith("```"):
        text = text.lstrip("`").strip()
        if text.startswith("python"):
            text = text.lstrip("python").strip()  # noqa: B005 - the handler strips these letters
    if text.endswith("```"):
        text = text.rstrip("`").strip()
    try:
        calls = []
        for statement in parse_statements_quietly(text):
            node = getattr(statement, "value", None)
            if not isinstance(node, ast.Call):
                return None
            calls.append(prompt.resolve_call(node))
        return calls
    except (SyntaxError, DecodeError, *DECODE_FAILURES):  # the handler catches everything here
        return None


def _minicpm_message(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    """(the reply's text, its calls), as minicpm_fc.py's ``fc2dict`` splits the output."""
    text = raw
    if _THOUGHT_END in text and _THOUGHT_START in text:
        thought, text = text.rsplit(_THOUGHT_END, 1)
        thought.split(_THOUGHT_START, 1)[1]  # noqa: B018 - IndexError when the start comes after the end
    if not (_CALLS_START in text and _CALLS_END in text):
        return text.strip(), []
    block, content = text.rsplit(_CALLS_END, 1)
    block = block.split(_CALLS_START, 1)[1]  # IndexError (a failed decode) if it starts after the end
    return content.strip(), _minicpm_statements(block) or []


@failures_are_decode_errors
def decode_ast_minicpm(raw: Any, language: str = "python") -> Decoded:
    content, calls = _minicpm_message(raw)
    return calls if calls else content  # type: ignore[return-value] - the text is no call


@failures_are_decode_errors
def decode_execute_minicpm(raw: Any) -> list[str]:
    _, calls = _minicpm_message(raw)
    return [call_string(name, arguments, ", ") for call in calls for name, arguments in call.items()]
