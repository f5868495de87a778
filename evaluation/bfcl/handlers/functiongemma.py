"""``functiongemma`` — ``local_inference/functiongemma.py`` (FunctionGemma 270M): control tokens
around each call and a JSON-like argument syntax with its own reading rules.

A call is ``<start_function_call>call:NAME{ARGS}<end_function_call>``; blocks whose text does not
start with ``call:`` are skipped, a call without ``{`` has no arguments. ``ARGS`` is read one
character at a time, as BFCL's state machine reads it:

* ``<escape>...<escape>`` is a string taken as written (unclosed: the rest of the text, the opening
  token included);
* other runs of characters between the structural characters ``{ [ : ] } ,`` are trimmed and read
  as ``null``/``true``/``false``, else Python's ``int``, else ``float``, else kept as text;
* a value inside an object becomes the next key when a ``:`` follows it (as its ``str``) and the
  value of the pending key otherwise; ``,`` forgets a value waiting to become a key;
* ``}`` and ``]`` close whatever is open (never the outermost level), and only ``}`` also drops a
  pending key — so mismatched brackets shift keys exactly as they do in BFCL.

The arguments are the first value read, if it is an object, else none.
"""

from __future__ import annotations

import re
from typing import Any

from evaluation.bfcl.handlers.base import Decoded, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import call_string

ESCAPE = "<escape>"
CALL_BLOCK = re.compile(r"<start_function_call>(.*?)<end_function_call>", re.DOTALL)
CALL_PREFIX = "call:"
_STRUCTURE = "{[:]},"
_WORDS = {"null": None, "true": True, "false": False}


def _scalar(text: str) -> Any:
    if text in _WORDS:
        return _WORDS[text]
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


class _ArgumentReader:
    """The reading state: open containers (the outermost a list), one key slot per opened object
    (kept apart from the containers, as BFCL keeps them), the characters of the current word, and
    the last value that could still become a key."""

    def __init__(self) -> None:
        self.outermost: list[Any] = []
        self.open: list[Any] = [self.outermost]
        self.key_slots: list[str | None] = []
        self.word: list[str] = []
        self.candidate_key: Any = None

    def place(self, value: Any) -> None:
        target = self.open[-1]
        if isinstance(target, list):
            target.append(value)
            return
        slot = self.key_slots[-1] if self.key_slots else None
        if slot is None:
            self.candidate_key = value
        else:
            target[slot] = value
            self.key_slots[-1] = None

    def end_word(self) -> None:
        text = "".join(self.word).strip()
        self.word.clear()
        if text:
            self.place(_scalar(text))

    def structure(self, char: str) -> None:
        if char in "{[":
            container: Any = {} if char == "{" else []
            self.place(container)
            self.open.append(container)
            if char == "{":
                self.key_slots.append(None)
        elif char in "}]":
            if len(self.open) > 1:
                self.open.pop()
                if char == "}" and self.key_slots:
                    self.key_slots.pop()
        elif char == ":":
            if self.candidate_key is not None:
                key, self.candidate_key = str(self.candidate_key), None
                if isinstance(self.open[-1], dict) and self.key_slots:
                    self.key_slots[-1] = key
            return
        self.candidate_key = None  # `{ [ ] } ,` all forget it

    def read(self, text: str) -> dict[str, Any]:
        position = 0
        while position < len(text):
            if text.startswith(ESCAPE, position):
                start = position + len(ESCAPE)
                end = text.find(ESCAPE, start)
                value, position = (
                    (text[position:], len(text)) if end < 0 else (text[start:end], end + len(ESCAPE))
                )
                self.end_word()
                self.place(value)
                continue
            char = text[position]
            if char in _STRUCTURE:
                self.end_word()
                self.structure(char)
            else:
                self.word.append(char)
            position += 1
        self.end_word()
        first = self.outermost[0] if self.outermost else None
        return first if isinstance(first, dict) else {}


def _calls(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    calls = []
    for block in CALL_BLOCK.findall(raw):
        block = block.strip()
        if not block.startswith(CALL_PREFIX):
            continue
        body = block[len(CALL_PREFIX) :]
        brace = body.find("{")
        if brace < 0:
            calls.append((body.strip(), {}))
        else:
            calls.append((body[:brace].strip(), _ArgumentReader().read(body[brace:])))
    return calls


@failures_are_decode_errors
def decode_ast(raw: Any, language: str = "python") -> Decoded:
    return [{name: arguments} for name, arguments in _calls(raw)]


@failures_are_decode_errors
def decode_execute(raw: Any) -> list[str]:
    return [call_string(name, arguments, ", ") for name, arguments in _calls(raw)]


def _value_text(value: Any) -> str:
    """A value in FunctionGemma's syntax (how the model writes arguments; used to render test shapes)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return f"{ESCAPE}{value}{ESCAPE}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_value_text(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def render_calls(calls: list[tuple[str, dict[str, Any]]]) -> str:
    """Calls as FunctionGemma writes them (its chat template's model turn)."""
    return "".join(
        f"<start_function_call>{CALL_PREFIX}{name}{_value_text(arguments)}<end_function_call>"
        for name, arguments in calls
    )
