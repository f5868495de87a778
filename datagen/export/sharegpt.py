"""Trajectories to the APIGen-MT ShareGPT layout (as in the released APIGen-MT-5k data).

A row is ``{"conversations": [{"from": human|gpt|function_call|observation, "value": str}],
"system": policy, "tools": JSON string}``:

- a ``function_call`` value is ``{"name", "arguments"}`` as JSON, the arguments an object;
- ``tools`` is a JSON list of bare ``{"name", "description", "parameters"}`` schemas, APIGen-MT-5k's
  shape, not OpenAI's ``{"type": "function", "function": {...}}`` wrapper.

Call ids and tool-message names have no place in the layout and are dropped. This module only
writes; the one reader of the layout is ``training.convert.from_sharegpt`` (datagen never imports
training), and ``tests/test_sharegpt_import.py`` checks that what is written here reads back there
as the same conversation.
"""

from __future__ import annotations

import json
from typing import Any

ROLE_TO_FROM = {"user": "human", "assistant": "gpt"}


class ShareGPTError(ValueError):
    """A trajectory the layout cannot hold; the message says which message and why."""


def bare_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function-tool schema in APIGen-MT-5k's bare shape."""
    function = tool.get("function") if "function" in tool else tool
    if (
        tool.get("type", "function") != "function"
        or not isinstance(function, dict)
        or not isinstance(function.get("name"), str)
    ):
        raise ShareGPTError(
            f'expected a function tool {{"type": "function", "function": {{"name", ...}}}}; found {json.dumps(tool)[:120]}'
        )
    bare = {"name": function["name"], "description": function.get("description", "")}
    bare["parameters"] = function.get("parameters", {"type": "object", "properties": {}})
    return bare


def to_sharegpt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    system = ""
    turns: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            system = message.get("content") or ""
        elif role == "tool":
            turns.append({"from": "observation", "value": message.get("content") or ""})
        elif role in ROLE_TO_FROM:
            content = message.get("content") or ""
            if content or role == "user" or not message.get("tool_calls"):
                turns.append({"from": ROLE_TO_FROM[role], "value": content})
            for call in message.get("tool_calls") or []:
                fn = call["function"]
                arguments = fn.get("arguments") or {}  # null: a call without arguments
                if isinstance(arguments, str):  # OpenAI's wire form; the layout stores objects
                    arguments = json.loads(arguments) if arguments.strip() else {}
                value = {"name": fn["name"], "arguments": arguments}
                turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
        else:
            raise ShareGPTError(
                f"message {index}: role {role!r} has no ShareGPT counterpart; expected system, user, assistant or tool"
            )
    return {
        "conversations": turns,
        "system": system,
        "tools": json.dumps([bare_tool(t) for t in tools], ensure_ascii=False),
    }
