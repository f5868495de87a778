"""Tool-call formats at the model edge, rendered and parsed in one place, one format per module.

Inside the toolkit a call is ``{"name": str, "arguments": dict}``. A format turns calls into the
assistant text a model of that family writes, lists tools in a system-prompt block for models whose
chat template does not render tools, and reads model text back into calls:

- ``openai``  — native: tools and ``tool_calls`` travel as structured fields of an OpenAI-compatible
  API (:mod:`.openai_native`).
- ``hermes``  — Hermes/Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks
  (:mod:`.hermes`).
- ``xlam``    — xLAM: the whole assistant message is a JSON list ``[{"name": ..., "arguments": {...}}]``
  (:mod:`.xlam`).
- ``llama3``  — Llama 3.x JSON: ``{"name": ..., "parameters": {...}}``, one per line (:mod:`.llama3`).
- ``python``  — Python-call syntax ``[f(a=1), g(b="x")]``, read with ``ast`` (never evaluated)
  (:mod:`.python_calls`).

What they share: the base class and the rule of which calls run (:mod:`.base`), reading JSON calls
(:mod:`.json_calls`) and checking calls against the offered tools (:mod:`.validation`).

Parsing never raises on model output: a malformed output becomes a :class:`ParseError` value. Every
decoded call's arguments are plain JSON that can be written as UTF-8: a value JSON cannot hold
(``...``, ``inf``, a set, an integer over 4,300 digits, a non-string key) or text that cannot be
encoded (a lone surrogate such as ``"\\ud800"``) makes the output an ``invalid_value`` error, so no
such value reaches an environment, a state hash or a run file.

Which calls of an output run (:func:`runnable_calls`), everywhere calls are executed (Phase 2's
episode loop, the τ harness, the simulated user's device, BFCL multi-turn):

- an output that could not be read in full (truncated, invalid JSON or syntax, a wrong structure, an
  invalid value) runs **nothing**, not even the calls decoded before the break: as in τ-bench, an
  agent acts on nothing from a broken message. The message is kept as the text the model wrote.
- an output that was read in full but whose calls do not fit the tools (``unknown_tool``,
  ``bad_arguments``) runs its calls: the environment refuses the bad ones with an error observation
  the agent can read, as τ-bench's and BFCL's executors do. The calls are returned next to the error
  so callers can show them.

BFCL multi-turn keeps the benchmark's own protocol so its numbers compare with the leaderboard: in
``fc`` mode a broken message runs nothing (BFCL's FC handlers fail to decode it and go to the next
turn, which is this rule); in the text modes each family's BFCL decoder decides, as BFCL's handler
does (Qwen's skips a ``<tool_call>`` block that does not decode and runs the others).
"""

from __future__ import annotations

from datagen.llm.formats.base import TOOL_FIT_ERRORS, ParsedOutput, ToolFormat, is_broken, runnable_calls
from datagen.llm.formats.hermes import HermesFormat
from datagen.llm.formats.json_calls import checked_call
from datagen.llm.formats.llama3 import Llama3Format
from datagen.llm.formats.openai_native import OpenAIFormat
from datagen.llm.formats.python_calls import PythonFormat
from datagen.llm.formats.validation import tool_function, validate_calls
from datagen.llm.formats.xlam import XLAMFormat
from datagen.llm.types import ParseError

FORMAT_NAMES = ("openai", "hermes", "xlam", "llama3", "python")

_FORMATS: dict[str, type[ToolFormat]] = {
    "openai": OpenAIFormat,
    "hermes": HermesFormat,
    "xlam": XLAMFormat,
    "llama3": Llama3Format,
    "python": PythonFormat,
}


def get_format(name: str) -> ToolFormat:
    """The tool-call format called ``name`` (one of :data:`FORMAT_NAMES`)."""
    kind = _FORMATS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"unknown tool-call format {name!r}; expected one of {list(FORMAT_NAMES)}")
    return kind()


__all__ = [
    "FORMAT_NAMES",
    "TOOL_FIT_ERRORS",
    "HermesFormat",
    "Llama3Format",
    "OpenAIFormat",
    "ParseError",
    "ParsedOutput",
    "PythonFormat",
    "ToolFormat",
    "XLAMFormat",
    "checked_call",
    "get_format",
    "is_broken",
    "runnable_calls",
    "tool_function",
    "validate_calls",
]
