"""The one check of a chat message's shape (``apigen_rules.messages``): every damaged shape is named, any
JSON value is answered without raising, and the Trajectory record refuses what it refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from apigen_rules.messages import call_problem, message_problem, messages_problem
from datagen.records import Trajectory

CALL = {"id": "c0", "type": "function", "function": {"name": "withdraw", "arguments": {"amount": 4}}}
GOOD = [
    {"role": "system", "content": "policy"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{**CALL, "function": {"name": "f", "arguments": '{"a": 1}'}}],
    },
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{**CALL, "function": {"name": "f", "arguments": ""}}],
    },
    {"role": "tool", "tool_call_id": "c0", "name": "withdraw", "content": '{"balance": 1}'},
]
# (message, what the problem says)
DAMAGED = [
    ("hello", "expected a message object, found the string 'hello'"),
    (None, "expected a message object, found null"),
    ({"content": "hi"}, "expected a role of system, user, assistant, tool, found none"),
    ({"role": ["user"], "content": "hi"}, "found an array"),
    ({"role": "wizard", "content": "hi"}, "found the string 'wizard'"),
    ({"role": "user", "content": [{"type": "text", "text": "hi"}]}, "expected content as text or null, found an array"),
    ({"role": "user", "content": {"text": "hi"}}, "expected content as text or null, found an object"),
    ({"role": "assistant", "tool_calls": "f(x=1)"}, "expected tool_calls as a list, found the string 'f(x=1)'"),
    ({"role": "assistant", "tool_calls": ["f(x=1)"]}, "tool call 0: expected a tool call object, found the string"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "name": "f"}]}, 'expected a tool call with a "function" object, found keys'),
    ({"role": "assistant", "tool_calls": [{"function": "f"}]}, 'expected a tool call with a "function" object, found the string'),
    ({"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}, "expected a tool call with a name, found none"),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]}, "expected the arguments of 'f' as an object, found an array"),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}, "found text that is not JSON"),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[" * 50_000}}]}, "found text that is not JSON"),
    ({"role": "tool", "content": "x", "name": 3}, "expected name as text or null, found a number"),
    ({"role": "assistant", "tool_calls": [{**CALL, "id": []}]}, "expected the id of tool call 'withdraw' as text or null, found an array"),
]  # fmt: skip


def test_good_messages_pass():
    assert messages_problem(GOOD) is None
    assert all(message_problem(m) is None for m in GOOD)
    assert call_problem(CALL) is None


@pytest.mark.parametrize("message, problem", DAMAGED, ids=[p for _, p in DAMAGED])
def test_each_damaged_shape_is_named(message, problem):
    found = messages_problem([*GOOD, message])
    assert found is not None and found.startswith(f"message {len(GOOD)}: ") and problem in found


def test_a_message_list_that_is_not_a_list_is_named():
    assert messages_problem("hello") == "expected messages as a list, found the string 'hello'"
    assert messages_problem(None) == "expected messages as a list, found null"


@pytest.mark.parametrize("message, problem", DAMAGED[2:], ids=[p for _, p in DAMAGED[2:]])
def test_the_trajectory_record_refuses_a_damaged_message(message, problem):
    row = {
        "id": "t",
        "blueprint_id": "b",
        "env": "toy",
        "seed": 1,
        "tools": [],
        "success": True,
        "reward": 1.0,
    }
    Trajectory.model_validate({**row, "messages": GOOD})
    with pytest.raises(ValidationError, match="message 6: "):
        Trajectory.model_validate({**row, "messages": [*GOOD, message]})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["role", "content", "tool_calls", "tool_call_id", "name", "function", "arguments", "id"]
)
CALL_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON,
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=4) | JSON,
                "arguments": JSON | st.sampled_from(['{"a": 1}', " ", "[1]"]),
            },
        ),
    },
)
MESSAGE_LIKE = st.dictionaries(
    KEYS, JSON | st.sampled_from(["user", "assistant", "tool"]), max_size=5
) | st.fixed_dictionaries(
    {"role": st.just("assistant")},
    optional={"content": st.none() | st.text(max_size=4), "tool_calls": st.lists(CALL_LIKE, max_size=2)},
)


@settings(max_examples=400, deadline=None)
@given(messages=st.lists(MESSAGE_LIKE | JSON | st.just(GOOD[2]), max_size=4) | JSON)
def test_any_json_value_is_answered_without_raising(messages):
    problem = messages_problem(messages)
    assert problem is None or isinstance(problem, str)
    if problem is None:  # what passes is what the exports read without a check of their own
        for message in messages:
            assert message["role"] in ("system", "user", "assistant", "tool")
            assert message.get("content") is None or isinstance(message["content"], str)
            for call in message.get("tool_calls") or []:
                assert isinstance(call["function"]["name"], str)
                arguments = call["function"].get("arguments")
                assert (
                    arguments is None
                    or isinstance(arguments, dict)
                    or not arguments.strip()
                    or isinstance(json.loads(arguments), dict)
                )
