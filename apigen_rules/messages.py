"""The chat messages a run record or a dataset row holds (OpenAI chat format), checked in one place.

Phase 2 writes them; the exports, the quality figures, next-action and the viewer read them back. A
record edited by hand, written by another tool or damaged on disk can hold anything, so readers
check it here and skip the record with one line instead of failing on it. A message is:

- an object whose ``role`` is one of system, user, assistant, tool;
- ``content`` text or null (a list of parts or an object is not a text any export can hold);
- ``tool_calls`` null or a list of ``{"id", "type", "function": {"name", "arguments"}}``, the name a
  non-empty string, the arguments an object, a JSON-object string, or null / blank (no arguments),
  ``id`` and ``type`` text or null;
- ``tool_call_id`` and ``name`` text or null.

Keys beyond these are not checked here (the ``hf`` export refuses them by name, ``jsonl`` keeps them).

A dataset stores a message as the struct :func:`message_features` declares (one column per key of
:data:`MESSAGE_KEYS`, a call's arguments as a JSON-object string): ``datagen.export`` writes it and
``training.mixture`` reads it, both through this one declaration.
"""

from __future__ import annotations

import json
from typing import Any

from apigen_rules.jsonl import json_kind

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


def message_features() -> dict[str, Any]:
    """One message as a ``datasets`` struct: the keys of :data:`MESSAGE_KEYS`; a tool call is
    ``{id, type, function: {name, arguments}}`` with the arguments a JSON-object string."""
    from datasets import List, Value

    call = {
        "id": Value("string"),
        "type": Value("string"),
        "function": {"name": Value("string"), "arguments": Value("string")},
    }
    return {
        "role": Value("string"),
        "content": Value("string"),
        "tool_calls": List(call),
        "tool_call_id": Value("string"),
        "name": Value("string"),
    }


def _arguments_problem(name: str, arguments: Any) -> str | None:
    if arguments is None or isinstance(arguments, dict):
        return None
    if isinstance(arguments, str):
        if not arguments.strip():
            return None
        try:
            parsed = json.loads(arguments)
        except (ValueError, RecursionError):
            return f"expected the arguments of {name!r} as a JSON object, found text that is not JSON"
        if isinstance(parsed, dict):
            return None
        arguments = parsed
    return f"expected the arguments of {name!r} as an object, found {json_kind(arguments)}"


def call_problem(call: Any) -> str | None:
    """What is wrong with one tool call, or None."""
    if not isinstance(call, dict):
        return f"expected a tool call object, found {json_kind(call)}"
    function = call.get("function")
    if not isinstance(function, dict):
        found = json_kind(function) if "function" in call else f"keys {sorted(map(str, call))[:6]}"
        return f'expected a tool call with a "function" object, found {found}'
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        return f"expected a tool call with a name, found {json_kind(name) if 'name' in function else 'none'}"
    for key in ("id", "type"):
        if call.get(key) is not None and not isinstance(call[key], str):
            return f"expected the {key} of tool call {name!r} as text or null, found {json_kind(call[key])}"
    return _arguments_problem(name, function.get("arguments"))


def message_problem(message: Any) -> str | None:
    """What is wrong with one chat message (module docstring), or None."""
    if not isinstance(message, dict):
        return f"expected a message object, found {json_kind(message)}"
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        return (
            f"expected a role of {', '.join(ROLES)}, found {json_kind(role) if 'role' in message else 'none'}"
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        return f"expected content as text or null, found {json_kind(content)}"
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        return f"expected tool_calls as a list, found {json_kind(calls)}"
    for index, call in enumerate(calls or []):
        problem = call_problem(call)
        if problem:
            return f"tool call {index}: {problem}"
    for key in ("tool_call_id", "name"):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            return f"expected {key} as text or null, found {json_kind(value)}"
    return None


def messages_problem(messages: Any) -> str | None:
    """What is wrong with a dialogue's message list (the first problem, with its position), or None."""
    if not isinstance(messages, list):
        return f"expected messages as a list, found {json_kind(messages)}"
    for index, message in enumerate(messages):
        problem = message_problem(message)
        if problem:
            return f"message {index}: {problem}"
    return None
