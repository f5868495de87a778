"""What every tool-call format shares: the parsed output, the rule of which calls of an output run,
and the base class (rendering the tools block from its template, reading past a reasoning block)."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import NamedTuple

import jinja2

from datagen.llm.types import ParseError, ToolCall, ToolSchema

_PROMPTS_DIR = Path(__file__).parent.parent / "templates" / "tool_prompts"


class ParsedOutput(NamedTuple):
    content: str
    calls: list[ToolCall]
    error: ParseError | None


#: Errors about how decoded calls fit the offered tools; every other kind means the output is broken.
TOOL_FIT_ERRORS = frozenset({"unknown_tool", "bad_arguments"})


def is_broken(error: ParseError | None) -> bool:
    """True for an output that could not be read in full: none of its calls may run."""
    return error is not None and error.kind not in TOOL_FIT_ERRORS


def runnable_calls(calls: list[ToolCall], error: ParseError | None) -> list[ToolCall]:
    """The calls of one output that may run (the rule in :mod:`datagen.llm.formats`): none from a
    broken output, all of them otherwise (the environment answers the ones that do not fit the tools)."""
    return [] if is_broken(error) else calls


@cache
def _prompt_template(name: str) -> jinja2.Template:
    environment = jinja2.Environment(keep_trailing_newline=False, undefined=jinja2.StrictUndefined)
    # jinja's own tojson escapes <, > and & for HTML; models should see plain JSON.
    environment.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    return environment.from_string((_PROMPTS_DIR / f"{name}.jinja").read_text())


_REASONING = re.compile(r"\A\s*<think>(.*?)(</think>|\Z)\s*", re.S)


class ToolFormat(ABC):
    """How one model family writes tool calls."""

    name: str
    #: True if tools and tool_calls travel as API fields rather than in the text.
    structured: bool = False

    def render_tools(self, tools: list[ToolSchema]) -> str:
        """The system-prompt block that lists ``tools`` and tells the model how to call them."""
        return _prompt_template(self.name).render(tools=tools).strip()

    @abstractmethod
    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        """The assistant text that makes ``calls`` (after ``content``, if any)."""

    def parse(self, text: str, tools: list[ToolSchema] | None = None) -> ParsedOutput:
        """Model text -> (content, calls, error); never raises on malformed text.

        A leading ``<think>...</think>`` block (reasoning models: Qwen3, R1 distills) is not part of
        the answer: calls written while thinking are not calls, and the content starts after it."""
        reasoning = _REASONING.match(text)
        if reasoning and not reasoning.group(2):
            return ParsedOutput(
                "",
                [],
                ParseError("truncated", "the <think> block is not closed: no answer follows it", text[:2000]),
            )
        text = text[reasoning.end() :] if reasoning else text
        return guarded(lambda: self._parse(text, tools), text)

    @abstractmethod
    def _parse(self, text: str, tools: list[ToolSchema] | None) -> ParsedOutput: ...


def guarded(parse: Callable[[], ParsedOutput], raw: str) -> ParsedOutput:
    """``parse()``, or an ``invalid_syntax`` error when the output is nested too deeply to read."""
    try:
        return parse()
    except (RecursionError, MemoryError):
        # Pathologically nested output (a looping model) must not kill a run.
        return ParsedOutput(
            "", [], ParseError("invalid_syntax", "the output is nested too deeply to read", raw[:2000])
        )
