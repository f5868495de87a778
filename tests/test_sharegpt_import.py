"""The one ShareGPT/xlam importer (training.convert) over every edge case, and datagen's ShareGPT
writer read back through it.

datagen only writes the layout (datagen never imports training); training only reads it. These
tests are where the two meet: what datagen writes must read back as the same conversation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from exportrun import TOOLS, messages
from hypothesis import given, settings
from hypothesis import strategies as st

from datagen.export.sharegpt import ShareGPTError, to_sharegpt
from training.convert import ConversionError, from_messages, from_sharegpt, from_xlam60k
from training.mixture import SourceConfig, build_mixture


def _row(*turns: tuple[str, Any], tools: Any = "[]") -> dict[str, Any]:
    return {
        "system": "policy",
        "tools": tools,
        "conversations": [
            {"from": kind, "value": value if isinstance(value, str) else json.dumps(value)}
            for kind, value in turns
        ],
    }


def _call_row(value: Any) -> dict[str, Any]:
    return _row(("human", "hi"), ("function_call", value), ("observation", "ok"), ("gpt", "done"))


def _arguments(row: dict[str, Any]) -> dict[str, Any]:
    calls = [c for m in from_sharegpt(row)["messages"] for c in m["tool_calls"] or []]
    assert len(calls) == 1
    return json.loads(calls[0]["function"]["arguments"])


@pytest.mark.parametrize(
    ("value", "arguments"),
    [
        ({"name": "f", "arguments": {"x": 1}}, {"x": 1}),
        ({"name": "f", "arguments": '{"x": 1}'}, {"x": 1}),  # some copies store a JSON string
        ({"name": "f", "parameters": {"x": 1}}, {"x": 1}),  # was {} in datagen's copy
        ({"name": "f", "arguments": ""}, {}),  # was a dropped row in training's copy
        ({"name": "f", "arguments": "  "}, {}),
        ({"name": "f", "arguments": None}, {}),  # was an error in datagen's copy
        ({"name": "f", "arguments": {}}, {}),
        ({"name": "f", "arguments": "{}"}, {}),
        ({"name": "f"}, {}),
        (
            {"type": "function", "function": {"name": "f", "arguments": '{"x": [1, {"y": null}]}'}},
            {"x": [1, {"y": None}]},
        ),
    ],
    ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else None,
)
def test_function_call_shapes_that_are_read(value: dict[str, Any], arguments: dict[str, Any]):
    assert _arguments(_call_row(value)) == arguments


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        ({"name": "f", "args": {"x": 1}}, "tool call has unknown keys", "['args']"),
        ({"name": "f", "input": {"x": 1}}, "tool call has unknown keys", "['input']"),
        (
            {"name": "f", "arguments": {"x": 1}, "parameters": {"x": 1}},
            "tool call has both arguments and parameters",
            "",
        ),
        ({"name": "f", "arguments": "[1]"}, "tool-call arguments are not a JSON object", ""),
        ({"name": "f", "arguments": 3}, "tool-call arguments are not a JSON object", ""),
        ({"name": "f", "arguments": "{bad"}, "tool-call arguments is not valid JSON", ""),
        ({"arguments": {}}, "tool call has no name", ""),
        ([{"name": "f"}], "tool call is not an object", ""),
        ("{not json", "tool call is not valid JSON", ""),
    ],
)
def test_function_call_shapes_that_are_refused(value: Any, reason: str, detail: str):
    with pytest.raises(ConversionError) as caught:
        from_sharegpt(_call_row(value))
    assert caught.value.reason == reason
    assert "turn 1" in caught.value.detail and detail in caught.value.detail


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        (
            [("human", "hi"), ("observation", "x"), ("gpt", "ok")],
            "observation with no function_call before it",
        ),
        (
            [("human", "hi"), ("function_call", {"name": "f"}), ("observation", "1"), ("observation", "2")],
            "observation with no function_call before it",
        ),
        ([("human", "hi"), ("robot", "x")], "unknown ShareGPT speaker"),
        ([("human", "hi")], "no assistant turn"),
    ],
)
def test_conversations_that_are_refused(turns: list[tuple[str, Any]], reason: str):
    with pytest.raises(ConversionError) as caught:
        from_sharegpt(_row(*turns))
    assert caught.value.reason == reason


def test_parallel_calls_join_the_text_before_them_and_observations_answer_in_order():
    row = _row(
        ("human", "hi"),
        ("gpt", "Let me check."),
        ("function_call", {"name": "a", "arguments": {"x": 1}}),
        ("function_call", {"name": "b", "arguments": {"y": 2}}),
        ("observation", "1"),
        ("observation", "2"),
        ("function_call", {"name": "c", "arguments": {}}),
        ("observation", "3"),
        ("gpt", "Done."),
    )
    converted = from_sharegpt(row)["messages"]
    assert [m["role"] for m in converted] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert converted[2]["content"] == "Let me check."
    assert [c["function"]["name"] for c in converted[2]["tool_calls"]] == ["a", "b"]
    assert [m["name"] for m in converted if m["role"] == "tool"] == ["a", "b", "c"]
    assert converted[5]["content"] == "" and converted[5]["tool_calls"][0]["function"]["name"] == "c"


def test_bare_and_wrapped_tool_schemas_read_alike():
    bare = [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}]
    wrapped = [{"type": "function", "function": bare[0]}]
    turns = (("human", "hi"), ("gpt", "ok"))
    assert (
        from_sharegpt(_row(*turns, tools=json.dumps(bare)))["tools"]
        == from_sharegpt(_row(*turns, tools=wrapped))["tools"]
    )


def _xlam_row(parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "query": "q",
        "tools": json.dumps([{"name": "f", "description": "d", "parameters": parameters}]),
        "answers": json.dumps([{"name": "f", "arguments": {}}]),
    }


@pytest.mark.parametrize(
    ("spec", "required", "prop"),
    [
        ({"type": "str", "default": ""}, True, {"type": "string"}),  # "" is the dataset's "no default"
        ({"type": "int", "default": None}, True, {"type": "integer"}),
        ({"type": "str"}, True, {"type": "string"}),
        ({"type": "str, optional", "default": ""}, False, {"type": "string"}),
        ({"type": "bool, optional"}, False, {"type": "boolean"}),
        ({"type": "str", "default": "game"}, False, {"type": "string", "default": "game"}),
        ({"type": "int", "default": 0}, False, {"type": "integer", "default": 0}),
        ({"type": "List[int]"}, True, {"type": "array", "description": "(type: List[int])"}),
    ],
)
def test_xlam60k_parameters(spec: dict[str, Any], required: bool, prop: dict[str, Any]):
    schema = json.loads(from_xlam60k(_xlam_row({"p": spec}))["tools"])[0]["function"]["parameters"]
    assert schema["properties"]["p"] == prop
    assert schema["required"] == (["p"] if required else [])


def _without_ids(row: dict[str, Any]) -> dict[str, Any]:
    out = []
    for m in row["messages"]:
        m = {**m, "tool_call_id": None}
        if m["tool_calls"]:
            m["tool_calls"] = [{**c, "id": None} for c in m["tool_calls"]]
        out.append(m)
    return {"messages": out, "tools": row["tools"]}


def test_what_datagen_writes_reads_back_as_the_same_conversation():
    conversation = messages(0)
    written = to_sharegpt(conversation, TOOLS)
    tools = json.loads(written["tools"])
    assert tools == [t["function"] for t in TOOLS]  # APIGen-MT-5k's bare shape
    assert all(set(t) == {"name", "description", "parameters"} for t in tools)
    call = next(json.loads(t["value"]) for t in written["conversations"] if t["from"] == "function_call")
    assert isinstance(call["arguments"], dict)
    assert _without_ids(from_sharegpt(written)) == _without_ids(
        from_messages({"messages": conversation, "tools": TOOLS})
    )


def test_the_writer_refuses_a_role_the_layout_cannot_hold():
    with pytest.raises(ShareGPTError, match="message 1: role 'developer'"):
        to_sharegpt([{"role": "user", "content": "x"}, {"role": "developer", "content": "y"}], [])


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_calls = st.lists(
    st.tuples(st.sampled_from(["a", "b_c", "d"]), st.dictionaries(st.text(max_size=6), _json, max_size=4)),
    min_size=1,
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(
    turns=st.lists(
        st.tuples(st.text(max_size=20), st.text(max_size=20), _calls | st.just([])), min_size=1, max_size=4
    ),
    results=st.text(max_size=20),
)
def test_any_trajectory_round_trips_through_writer_and_importer(turns, results):
    conversation: list[dict[str, Any]] = [{"role": "system", "content": "p"}]
    for user, text, calls in turns:
        conversation.append({"role": "user", "content": user})
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = [
                {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(calls)
            ]
        conversation.append(message)
        conversation += [
            {"role": "tool", "tool_call_id": f"c{i}", "name": n, "content": results}
            for i, (n, _) in enumerate(calls)
        ]
        if calls:
            conversation.append({"role": "assistant", "content": text or "ok"})
    expected = _without_ids(from_messages({"messages": conversation, "tools": TOOLS}))
    assert _without_ids(from_sharegpt(to_sharegpt(conversation, TOOLS))) == expected


def test_the_mixture_names_the_row_of_every_refused_shape(tmp_path: Path):
    rows = [
        {"id": "good", **_call_row({"name": "f", "parameters": {"x": 1}})},
        {"id": "row-args", **_call_row({"name": "f", "args": {"x": 1}})},
        {"id": "row-orphan", **_row(("human", "hi"), ("observation", "x"), ("gpt", "ok"))},
    ]
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(rows))
    dataset, report = build_mixture([SourceConfig(path=str(path), layout="sharegpt")], seed=0)
    failures = report.sources[0].failures
    assert failures["tool call has unknown keys"]["example_id"] == "row-args"
    assert failures["observation with no function_call before it"]["example_id"] == "row-orphan"
    assert len(dataset) == 1 and json.loads(
        dataset[0]["messages"][2]["tool_calls"][0]["function"]["arguments"]
    ) == {"x": 1}
