"""Our tool-call parsers against the ones users deploy: on a fixed corpus of model outputs
(tests/data/tool_call_corpus.json), each of our text formats and the vLLM ``--tool-call-parser`` that
reads the same syntax (datagen/llm/server_parsers.py: hermes, llama3_json, pythonic, xlam; imported from
the installed vllm, no server) must give the same calls and text on well-formed output. What the two
do with edge and malformed output is the table in datagen/llm/README.md, which this test writes:

    .venv/bin/python tests/test_parser_conformance.py --write

The server side is what ``eval tau --parse server`` scores through: vLLM's parser, then the openai
backend reading its ``tool_calls`` (``reply_choice`` with tool_format openai)."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: python tests/test_parser_conformance.py --write
    sys.path.insert(0, str(ROOT))

from datagen.llm.formats import get_format, runnable_calls  # noqa: E402
from datagen.llm.openai_backend import reply_choice  # noqa: E402
from datagen.llm.server_parsers import VLLM_PARSER_FOR_FORMAT  # noqa: E402

CORPUS = json.loads((ROOT / "tests" / "data" / "tool_call_corpus.json").read_text(encoding="utf-8"))
TOOLS: list[dict[str, Any]] = CORPUS["tools"]
CASES: list[dict[str, str]] = CORPUS["cases"]
DOC = ROOT / "datagen" / "llm" / "README.md"
START, END = "<!-- parser-conformance:start -->", "<!-- parser-conformance:end -->"


class Outcome(NamedTuple):
    calls: list[dict[str, Any]]  # the calls an agent loop runs (runnable_calls)
    error: str | None  # the ParseError kind, if any
    content: str  # the reply text kept beside the calls


@cache
def _vllm_parser(name: str) -> Any:
    """vLLM's parser ``name`` with a real tokenizer: the embedded model's, plus Llama 3's
    ``<|python_tag|>`` (llama3_json looks its id up; nothing else of the tokenizer is used)."""
    from transformers import AutoTokenizer
    from vllm.tool_parsers import ToolParserManager

    from datagen.llm.embedded import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|python_tag|>"]})
    return ToolParserManager.get_tool_parser(name)(tokenizer, _vllm_request().tools)


@cache
def _vllm_request() -> Any:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=TOOLS)


def toolkit_outcome(fmt: str, text: str) -> Outcome:
    parsed = get_format(fmt).parse(text, TOOLS)
    return Outcome(
        runnable_calls(parsed.calls, parsed.error),
        parsed.error.kind if parsed.error else None,
        parsed.content.strip(),
    )


def server_outcome(fmt: str, text: str) -> Outcome:
    info = _vllm_parser(VLLM_PARSER_FOR_FORMAT[fmt]).extract_tool_calls(text, _vllm_request())
    tool_calls = [call.model_dump() for call in info.tool_calls] if info.tools_called else []
    choice = reply_choice(get_format("openai"), info.content, tool_calls, "stop", TOOLS)
    return Outcome(
        runnable_calls(choice.tool_calls, choice.parse_error),
        choice.parse_error.kind if choice.parse_error else None,
        choice.content.strip(),
    )


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "well_formed"], ids=lambda c: c["id"])
def test_well_formed_output_reads_the_same_through_ours_and_vllms_parser(case: dict[str, str]) -> None:
    ours, theirs = toolkit_outcome(case["format"], case["text"]), server_outcome(case["format"], case["text"])
    assert ours.error is None and theirs.error is None
    assert (ours.calls, ours.content) == (theirs.calls, theirs.content)


def test_the_corpus_covers_every_format_and_kind() -> None:
    seen = {(c["format"], c["kind"]) for c in CASES}
    assert seen == {(f, k) for f in VLLM_PARSER_FOR_FORMAT for k in ("well_formed", "edge", "malformed")}
    assert len({c["id"] for c in CASES}) == len(CASES)


# What our formats write (the renderers our prompts and training data use) is read back the same by
# both parsers, for any arguments.
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_calls = st.lists(
    st.builds(
        lambda query, filters: {"name": "search", "arguments": {"query": query, "filters": filters}},
        st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20),
        st.dictionaries(st.text(max_size=8), _json_value, max_size=3),
    ),
    min_size=1,
    max_size=3,
)


@pytest.mark.parametrize("fmt", sorted(VLLM_PARSER_FOR_FORMAT))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=_calls)
def test_what_our_formats_write_both_parsers_read_back(fmt: str, calls: list[dict[str, Any]]) -> None:
    if fmt == "llama3" and len(calls) > 1:
        calls = calls[:1]  # Llama 3.x writes one JSON call per message
    text = get_format(fmt).render_calls(calls)
    ours, theirs = toolkit_outcome(fmt, text), server_outcome(fmt, text)
    assert ours == theirs
    assert [c["arguments"] for c in ours.calls] == [c["arguments"] for c in calls]


# ----------------------------------------------------------------------------- the documented table


def _show_calls(calls: list[dict[str, Any]]) -> str:
    if not calls:
        return "none"
    shown = ", ".join(
        f"{c['name']}({', '.join(f'{k}={json.dumps(v, ensure_ascii=False)}' for k, v in c['arguments'].items())})"
        for c in calls
    )
    return _escaped(shown)


def _escaped(text: str) -> str:
    """Text for a markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def _show(outcome: Outcome) -> str:
    text = _show_calls(outcome.calls)
    if outcome.error:
        text += f" ({outcome.error})"
    return text


def _cell(text: str) -> str:
    shown = text.replace("\\", "\\\\").replace("\n", "\\n")  # one line, newlines visible
    shown = shown if len(shown) <= 100 else shown[:97] + "..."
    return "`" + _escaped(shown.replace("`", "'")) + "`"


def render_table() -> str:
    """The edge and malformed cases, what each side runs, and whether the two agree."""
    well_formed = [c for c in CASES if c["kind"] == "well_formed"]
    lines = [
        f"Generated by `tests/test_parser_conformance.py` from {len(CASES)} outputs in "
        "`tests/data/tool_call_corpus.json`. On the",
        f"{len(well_formed)} well-formed ones both sides give the same calls and text (the test fails "
        'otherwise). "toolkit" is what our',
        'agent loops run (a broken output runs nothing; the error kind in brackets); "server" is what '
        "`--parse server` runs",
        "(vLLM's parser, then the openai backend reading its `tool_calls`).",
        "",
        "| format ↔ vLLM parser | output | what it is | toolkit runs | server runs | same calls | same text |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in CASES:
        if case["kind"] == "well_formed":
            continue
        ours, theirs = (
            toolkit_outcome(case["format"], case["text"]),
            server_outcome(case["format"], case["text"]),
        )
        lines.append(
            f"| {case['format']} ↔ {VLLM_PARSER_FOR_FORMAT[case['format']]} | {_cell(case['text'])} | "
            f"{case['kind']}: {_escaped(case['note'])} | {_show(ours)} | {_show(theirs)} | "
            f"{'yes' if ours.calls == theirs.calls else '**no**'} | "
            f"{'yes' if ours.content == theirs.content else 'no'} |"
        )
    return "\n".join(lines)


def _documented() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(START) + len(START) : text.index(END)].strip()


def test_the_documented_differences_are_what_the_parsers_do() -> None:
    assert _documented() == render_table(), (
        "datagen/llm/README.md is out of date: run .venv/bin/python tests/test_parser_conformance.py --write"
    )


def _write() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{render_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        _write()
    else:
        print(render_table())
