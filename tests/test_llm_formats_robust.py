"""Every tool-call parser returns its documented result for any input: a ParsedOutput whose calls are
plain JSON that can be written as UTF-8, or a ParseError value; never an exception. Plus the rule of
which calls of an output run, and the costs that used to grow with the output."""

from __future__ import annotations

import ast
import asyncio
import json
import uuid
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted import ScriptedModel
from toydomain import make_toy_domain

from datagen.llm.base import choice_from_text
from datagen.llm.formats import FORMAT_NAMES, OpenAIFormat, ParsedOutput, get_format, runnable_calls
from datagen.llm.types import ChatResult, Choice, ParseError, Usage
from datagen.simulate.agent import Agent
from datagen.simulate.episode import run_episode
from datagen.simulate.user import SimulatedUser

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "f",
            "description": "d",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "x": {"type": "integer"}},
                "required": [],
            },
        },
    }
]
HUGE_INT = "1" * 4400  # Python refuses to turn more than 4,300 digits into an int
ADVERSARIAL = [
    "<tool_call>",
    "</tool_call>",
    '{"name": "f", "arguments": ',
    '{"name": "f", "parameters": ',
    '[{"name": "f", "arguments": {"a": ',
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    '"',
    "'",
    '"\\ud800"',
    "'\\udfff'",
    HUGE_INT,
    "0x" + "f" * 4000,
    "...",
    "f(x=",
    "f(a=",
    "g.h(",
    "f(id='#W1', id='#W2')",
    "x=1",
    ", ",
    "**kw",
    "1e999",
    "NaN",
    "Infinity",
    "[" * 2000,
    '{"a":' * 1200,
    "<think>",
    "</think>",
    "```json\n",
    "```",
    "<|python_tag|>",
    "true",
    "null",
    "{[1]: 2}",
    "{1: 2}",
    "'a'*10**9",
    "(10**4000)**4000",
    "__import__('os')",
    "lambda: 0",
    "b'x'",
    "{1, 2}",
    "1j",
    "\n",
    ";",
]
soup = st.lists(st.one_of(st.sampled_from(ADVERSARIAL), st.text(max_size=12)), max_size=25).map("".join)
# Values a model can write inside a call that decodes, for each syntax: the adversarial ones must be
# reached through a well-formed call, which a soup of fragments rarely builds.
JSON_VALUES = [
    HUGE_INT,
    "-" + HUGE_INT,
    '"\\ud800"',
    '"a\\udfff"',
    '"ok"',
    "1",
    "-2.5",
    "1e999",
    "NaN",
    "-Infinity",
    "true",
    "null",
    "[" * 2000 + "]" * 2000,
    '{"a":' * 1200 + "1" + "}" * 1200,
    '[1, {"b": 2}]',
]
PYTHON_VALUES = [
    HUGE_INT,
    "'\\ud800'",
    "'ok'",
    "1",
    "...",
    "0x" + "f" * 4000,
    "1e999",
    "{1: 2}",
    "{[1]: 2}",
    "{1, 2}",
    "b'x'",
    "1j",
    "'a'*10**9",
    "(10**4000)**4000",
    "[" * 2000 + "]" * 2000,
    "f(x=1)",
    "None",
    "true",
    "-1",
    "{'k': [1, 'v']}",
]
keys = st.sampled_from(["a", "x", "id", "\\ud800"])


def _json_call(fmt: str, pairs: list[tuple[str, str]]) -> str:
    body = "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}"
    key = "parameters" if fmt == "llama3" else "arguments"
    call = f'{{"name": "f", "{key}": {body}}}'
    return {"hermes": f"<tool_call>{call}</tool_call>", "xlam": f"[{call}]"}.get(fmt, call)


def _calls(fmt: str) -> st.SearchStrategy[str]:
    if fmt == "python":
        pairs = st.lists(
            st.tuples(st.sampled_from(["a", "x", "id"]), st.sampled_from(PYTHON_VALUES)), max_size=3
        )
        one = pairs.map(lambda ps: "f(" + ", ".join(f"{k}={v}" for k, v in ps) + ")")
        return st.lists(one, min_size=1, max_size=3).map(lambda cs: "[" + ", ".join(cs) + "]")
    pairs = st.lists(st.tuples(keys, st.sampled_from(JSON_VALUES)), max_size=3)
    return st.lists(pairs.map(lambda ps: _json_call(fmt, ps)), min_size=1, max_size=3).map("\n".join)


def texts(fmt: str) -> st.SearchStrategy[str]:
    """Noise, well-formed calls with adversarial values, noise; sometimes cut short."""
    whole = st.tuples(soup, _calls(fmt), soup).map("".join)
    return st.one_of(soup, whole, st.tuples(whole, st.integers(0, 300)).map(lambda t: t[0][: t[1]]))


def _assert_documented(parsed: object) -> None:
    assert isinstance(parsed, ParsedOutput)
    assert isinstance(parsed.content, str)
    assert parsed.error is None or isinstance(parsed.error, ParseError)
    for call in parsed.calls:
        assert isinstance(call["name"], str) and isinstance(call["arguments"], dict)
        # plain JSON that any writer of a run file can take
        json.dumps(call, ensure_ascii=False, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("name", FORMAT_NAMES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), with_tools=st.booleans())
def test_every_parser_returns_its_documented_result_for_any_text(name: str, data, with_tools: bool):
    text = data.draw(texts(name))
    _assert_documented(get_format(name).parse(text, TOOLS if with_tools else None))


native_arguments = st.one_of(
    soup,
    st.lists(st.tuples(keys, st.sampled_from(JSON_VALUES)), max_size=3).map(
        lambda ps: "{" + ", ".join(f'"{k}": {v}' for k, v in ps) + "}"
    ),
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3)),
)
native_calls = st.lists(
    st.one_of(
        st.builds(
            lambda n, a: {"id": "c", "type": "function", "function": {"name": n, "arguments": a}},
            st.one_of(st.sampled_from(["f", "\ud800", ""]), st.text(max_size=5)),
            native_arguments,
        ),
        st.sampled_from([None, 3, "x", [], {"function": None}, {"function": {"name": 1}}]),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool_calls=native_calls, content=st.one_of(st.none(), soup), with_tools=st.booleans())
def test_openai_native_calls_return_the_documented_result_for_any_input(tool_calls, content, with_tools):
    _assert_documented(OpenAIFormat().parse_native(content, tool_calls, TOOLS if with_tools else None))


JSON_CALLS = {
    "hermes": '<tool_call>{{"name": "f", "arguments": {args}}}</tool_call>',
    "xlam": '[{{"name": "f", "arguments": {args}}}]',
    "llama3": '{{"name": "f", "parameters": {args}}}',
}


@pytest.mark.parametrize("name", sorted(JSON_CALLS))
@pytest.mark.parametrize("args", [f'{{"x": {HUGE_INT}}}', '{"a": "\\ud800"}', '{"a\\udfff": "k"}'])
@pytest.mark.parametrize("with_tools", [False, True])
def test_json_values_python_cannot_hold_or_write_are_invalid_values(name: str, args: str, with_tools: bool):
    parsed = get_format(name).parse(JSON_CALLS[name].format(args=args), TOOLS if with_tools else None)
    assert parsed.calls == [] and parsed.error is not None and parsed.error.kind == "invalid_value"


@pytest.mark.parametrize(
    "text",
    [
        "[f(x=...)]",  # Ellipsis passes ast's literal check; JSON has no such value
        "[f(a=0x" + "f" * 4000 + ")]",  # a 4,800-digit int: jsonschema's message and json.dumps fail on it
        "[f(a='\\ud800')]",
        "[f(a=1e999)]",  # inf
        "[f(a={1: 2})]",  # JSON keys are strings
        "[f(a={[1]: 2})]",
    ],
)
@pytest.mark.parametrize("with_tools", [False, True])
def test_python_literals_that_are_not_plain_json_are_errors(text: str, with_tools: bool):
    parsed = get_format("python").parse(text, TOOLS if with_tools else None)
    assert parsed.calls == [] and isinstance(parsed.error, ParseError)


def test_python_refuses_a_keyword_given_twice():
    parsed = get_format("python").parse("[f(a='#W1', a='#W2')]", TOOLS)
    assert parsed.calls == [] and parsed.error is not None and parsed.error.kind == "bad_structure"
    assert "given twice" in parsed.error.message


def test_openai_native_arguments_nested_2000_deep_are_an_error_not_a_crash():
    deep = '{"a": ' + "[" * 2000 + "]" * 2000 + "}"
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": deep}}]
    parsed = OpenAIFormat().parse_native("", calls, TOOLS)
    assert parsed.calls == [] and parsed.error is not None


def test_python_format_looks_up_source_segments_only_for_errors(monkeypatch):
    """A 20,000-call output took over 30 s: every call looked its source up by scanning the source."""
    lookups = []
    real = ast.get_source_segment
    monkeypatch.setattr(ast, "get_source_segment", lambda *a, **k: lookups.append(1) or real(*a, **k))
    text = "[" + ", ".join(f"f(a='v{i}', x={i})" for i in range(500)) + "]"
    parsed = get_format("python").parse(text, TOOLS)
    assert len(parsed.calls) == 500 and parsed.error is None
    assert lookups == []


def test_each_tool_schema_is_checked_once_not_on_every_call(monkeypatch):
    checked = []
    validator_class = jsonschema.validators.validator_for({})
    real = validator_class.check_schema
    monkeypatch.setattr(
        validator_class, "check_schema", lambda schema, **k: checked.append(1) or real(schema, **k)
    )
    tools = json.loads(json.dumps(TOOLS))
    tools[0]["function"]["parameters"]["description"] = uuid.uuid4().hex  # a schema no test has seen
    fmt = get_format("hermes")
    for i in range(50):
        parsed = fmt.parse(f'<tool_call>{{"name": "f", "arguments": {{"x": {i}}}}}</tool_call>', tools)
        assert parsed.error is None
    assert len(checked) == 1


# -- which calls of an output run ------------------------------------------------------------------

CANCEL = '<tool_call>{"name": "f", "arguments": {"a": "cancel"}}</tool_call>'


def test_a_broken_output_runs_none_of_its_calls():
    parsed = get_format("hermes").parse(CANCEL + '\n<tool_call>{"name": "f", "argu', TOOLS)
    assert parsed.calls and parsed.error is not None and parsed.error.kind == "truncated"
    assert runnable_calls(parsed.calls, parsed.error) == []


def test_an_output_read_in_full_runs_its_calls_and_the_environment_answers_bad_ones():
    parsed = get_format("hermes").parse(
        CANCEL + '\n<tool_call>{"name": "g", "arguments": {}}</tool_call>', TOOLS
    )
    assert parsed.error is not None and parsed.error.kind == "unknown_tool"
    assert runnable_calls(parsed.calls, parsed.error) == parsed.calls


class _TextModel:
    """A model whose replies are raw text, decoded by a real tool-call format as a backend does."""

    def __init__(self, replies, fmt: str = "hermes"):
        self.name = "text-model"
        self._replies = iter(replies)
        self._format = get_format(fmt)

    async def chat(self, messages, *, tools=None, **kwargs) -> ChatResult:
        raw = next(self._replies)
        return ChatResult(choices=[choice_from_text(raw, "stop", self._format, tools)], usage=Usage())

    async def aclose(self) -> None:
        pass


def test_the_episode_runs_nothing_from_a_broken_message_and_keeps_its_text(tmp_path: Path):
    domain = make_toy_domain(tmp_path)
    env = domain.new_env(1)
    withdraw = '<tool_call>{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}</tool_call>'
    broken = withdraw + '\n<tool_call>{"name": "get_account", "arguments": {"account_id": "a1'
    agent = Agent(_TextModel([broken, "Sorry, let me try again."]), policy="p", tools=domain.tool_schemas())
    user = SimulatedUser(
        ScriptedModel(lambda m, k: ["withdraw 40 from a10" if len(m) < 3 else "bye ###STOP###"]),
        instruction="x",
        persona="y",
        best_of_n=1,
    )
    before = env.state_hash()
    episode = asyncio.run(run_episode(env, agent, user, max_steps=6))
    assert env.trace == [] and env.state_hash() == before  # the valid withdraw did not run
    assert episode.format_errors and episode.format_errors[0].startswith("truncated")
    sent = [m for m in episode.messages if m["role"] == "assistant" and m["content"] == broken.strip()]
    assert sent and "tool_calls" not in sent[0]


def test_bfcl_fc_multi_turn_runs_nothing_from_a_broken_message():
    """BFCL's FC handlers cannot decode a message whose call arguments are not JSON and go to the
    next turn; the stored step is the text, not the calls decoded before the break."""
    from evaluation.bfcl import data, tools
    from evaluation.bfcl.generate import RunSettings, run_multi_turn

    entry = data.load_entries("multi_turn_base")[0]
    offered = tools.openai_tools(tools.functions_for_model(entry), True)
    name = offered[0]["function"]["name"]
    calls = [
        {"id": "a", "type": "function", "function": {"name": name, "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": name, "arguments": '{"x": '}},
    ]

    class NativeModel:
        name = "native"

        async def chat(self, messages, *, tools=None, **kwargs) -> ChatResult:
            parsed = OpenAIFormat().parse_native("Let me do that.", calls, tools)
            assert parsed.calls and parsed.error is not None  # one call decoded before the break
            choice = Choice(parsed.content, parsed.calls, "Let me do that.", "stop", parsed.error)
            return ChatResult(choices=[choice], usage=Usage())

    row = asyncio.run(run_multi_turn(NativeModel(), entry, RunSettings(mode="fc")))
    assert all(steps == ["Let me do that."] for steps in row["result"])  # one step a turn: nothing ran


# Text a model may put inside an argument: every format's own markers among ordinary characters.
argument_text = st.lists(
    st.one_of(
        st.sampled_from(ADVERSARIAL[:40] + ["<tool_call>", "</tool_call>", "<|eom_id|>"]), st.text(max_size=6)
    ),
    max_size=8,
).map("".join)


@pytest.mark.parametrize("name", [n for n in FORMAT_NAMES if n != "openai"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=argument_text, content=st.sampled_from(["", "Let me check."]))
def test_any_string_argument_survives_render_and_parse(name: str, value: str, content: str):
    """A call whose argument holds the format's own markers (``<|python_tag|>``, ``</tool_call>``)
    reads back as written: the markers frame calls only outside them."""
    fmt = get_format(name)
    calls = [{"name": "f", "arguments": {"text": value, "n": 1}}]
    parsed = fmt.parse(fmt.render_calls(calls, content), None)
    assert parsed.error is None and parsed.calls == calls
    assert parsed.content == content
