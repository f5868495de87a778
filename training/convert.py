"""Rows of every accepted layout to one training row: ``messages`` (OpenAI chat format) + ``tools``.

The normalised row is what TRL's ``SFTTrainer`` and our chat templates read:

- ``messages``: dicts with exactly the keys ``role``, ``content`` (str), ``tool_calls`` (list or None),
  ``tool_call_id``, ``name``; every tool call is ``{"id", "type": "function", "function": {"name",
  "arguments"}}`` with ``arguments`` a canonical JSON-object *string*. Arrow merges the keys of
  differently shaped argument dicts into one struct (filling the gaps with nulls), which would render
  calls with arguments nobody made; a string survives Arrow exactly and templates emit it verbatim.
- ``tools``: the OpenAI function-tool schemas as one JSON string (TRL ``json.loads`` it per row).

Layouts: our own export and any ``messages``/``tools`` dataset (arguments as objects or JSON strings),
the APIGen-MT ShareGPT layout, and the single-turn ``xlam-function-calling-60k`` layout; for DPO,
preference pairs (``prompt``/``chosen``/``rejected`` + ``tools``, each side normalised the same way). A row that
cannot be converted raises ``ConversionError`` with a short reason; callers count and report it with
the row's id (``training.mixture``).

This is the toolkit's only reader of the ShareGPT and xlam layouts. ``datagen`` only writes ShareGPT
(``datagen.export.sharegpt``) and never imports training; ``tests/test_sharegpt_import.py`` checks that
what datagen writes reads back here into the same conversation, and pins every edge case below.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Row = Mapping[str, Any]
ROLES = {"system", "user", "assistant", "tool"}


class ConversionError(ValueError):
    """A row that cannot become a training example; ``reason`` is short and groupable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _loads_json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{what} is not valid JSON", f"{exc.msg} in {value[:80]!r}") from exc


def canonical_arguments(arguments: Any) -> str:
    """Tool-call arguments as a canonical JSON-object string.

    ``None`` and an empty (or blank) string mean a call without arguments, as do ``{}`` and ``"{}"``;
    anything else must be an object or a JSON string of one, else the row is refused.
    """
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}
    parsed = _loads_json(arguments, "tool-call arguments")
    if not isinstance(parsed, dict):
        raise ConversionError("tool-call arguments are not a JSON object", repr(arguments)[:80])
    return json.dumps(parsed, ensure_ascii=False)


# The keys a tool call may have. A call with any other key (``args``, ``input``, ...) is refused
# rather than read as a call without arguments: that is how arguments get lost without a trace.
_OPENAI_CALL_KEYS = {"id", "type", "function", "index"}
_FUNCTION_KEYS = {"name", "arguments", "parameters"}
_FLAT_CALL_KEYS = _FUNCTION_KEYS | {"id", "type"}


def normalise_tool_call(call: Any) -> dict[str, Any]:
    """A tool call to the OpenAI shape with canonical string arguments.

    Accepts OpenAI's ``{"id", "type", "function": {"name", "arguments"}}`` and the flat
    ``{"name", "arguments"}`` of the toolkit, APIGen-MT-5k and xlam-60k; ``parameters`` is accepted
    as the name of the arguments (some copies of the data use it), but not next to ``arguments``.
    """
    call = _loads_json(call, "tool call")
    if not isinstance(call, Mapping):
        raise ConversionError("tool call is not an object", repr(call)[:80])
    nested = "function" in call
    function = call["function"] if nested else call
    if not isinstance(function, Mapping):
        raise ConversionError("tool call is not an object", repr(call)[:80])
    unknown = (
        sorted((set(call) - _OPENAI_CALL_KEYS) | (set(function) - _FUNCTION_KEYS))
        if nested
        else (sorted(set(call) - _FLAT_CALL_KEYS))
    )
    if unknown:
        raise ConversionError(
            "tool call has unknown keys",
            f"{unknown} in {json.dumps(call, ensure_ascii=False)[:80]}; expected name and arguments (or parameters)",
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ConversionError("tool call has no name", repr(call)[:80])
    if "arguments" in function and "parameters" in function:
        raise ConversionError("tool call has both arguments and parameters", repr(call)[:80])
    arguments = function["parameters"] if "parameters" in function else function.get("arguments")
    return {
        "id": call.get("id") if isinstance(call.get("id"), str) else None,
        "type": "function",
        "function": {"name": name, "arguments": canonical_arguments(arguments)},
    }


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    raise ConversionError("message content is not text", f"found {type(content).__name__}")


def normalise_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise ConversionError("message is not an object", repr(message)[:80])
    role = message.get("role")
    if role == "ipython":  # Llama's name for tool results
        role = "tool"
    if role not in ROLES:
        raise ConversionError("unknown message role", repr(role))
    calls = message.get("tool_calls") or []
    if calls and role != "assistant":
        raise ConversionError("tool calls outside an assistant message", f"role {role!r}")
    content = message.get("content")
    if role == "tool" and not isinstance(content, str) and content is not None:
        content = json.dumps(content, ensure_ascii=False)  # structured tool results become their JSON text
    return {
        "role": role,
        "content": _content_text(content),
        "tool_calls": [normalise_tool_call(call) for call in calls] or None,
        "tool_call_id": message.get("tool_call_id") if isinstance(message.get("tool_call_id"), str) else None,
        "name": message.get("name") if isinstance(message.get("name"), str) else None,
    }


def normalise_tool_schema(tool: Any) -> dict[str, Any]:
    """A tool schema in the OpenAI ``{"type": "function", "function": {...}}`` shape."""
    tool = _loads_json(tool, "tool schema")
    if not isinstance(tool, Mapping):
        raise ConversionError("tool schema is not an object", repr(tool)[:80])
    function = tool.get("function") if "function" in tool else tool
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise ConversionError("tool schema has no name", repr(tool)[:80])
    return {"type": "function", "function": dict(function)}


def normalise_tools(tools: Any) -> str:
    tools = _loads_json(tools, "tools") or []
    if not isinstance(tools, list):
        raise ConversionError("tools is not a list", f"found {type(tools).__name__}")
    return json.dumps([normalise_tool_schema(tool) for tool in tools], ensure_ascii=False)


def _check_conversation(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not any(m["role"] == "assistant" for m in messages):
        raise ConversionError("no assistant turn", f"{len(messages)} messages")
    return messages


def from_messages(row: Row) -> dict[str, Any]:
    """Our export (and any ``messages``/``tools`` dataset) to a training row."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ConversionError("no messages list", f"columns {sorted(row)}")
    return {
        "messages": _check_conversation([normalise_message(m) for m in messages]),
        "tools": normalise_tools(row.get("tools")),
    }


def from_sharegpt(row: Row) -> dict[str, Any]:
    """The APIGen-MT ShareGPT layout: ``conversations`` (human/gpt/function_call/observation), ``system``, ``tools``.

    Consecutive ``function_call`` entries are one assistant message with parallel calls (joined to the
    ``gpt`` text right before them); each ``observation`` answers the oldest unanswered call, so an
    observation with no call before it is an error, never a tool message without a call.
    """
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise ConversionError("no conversations list", f"columns {sorted(row)}")
    messages: list[dict[str, Any]] = []
    if isinstance(row.get("system"), str) and row["system"].strip():
        messages.append(normalise_message({"role": "system", "content": row["system"]}))
    pending: list[str] = []  # names of calls not yet answered by an observation
    for index, turn in enumerate(turns):
        speaker, value = (turn.get("from"), turn.get("value")) if isinstance(turn, Mapping) else (None, None)
        if not isinstance(value, str):
            raise ConversionError("turn value is not a string", f"turn {index}: {repr(turn)[:80]}")
        if speaker == "human":
            messages.append(normalise_message({"role": "user", "content": value}))
        elif speaker == "gpt":
            messages.append(normalise_message({"role": "assistant", "content": value}))
        elif speaker == "function_call":
            try:
                call = normalise_tool_call(value)
            except ConversionError as error:
                raise ConversionError(error.reason, f"turn {index}: {error.detail}") from error
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant":
                last["tool_calls"] = [*(last["tool_calls"] or []), call]
            else:
                messages.append(
                    {**normalise_message({"role": "assistant", "content": ""}), "tool_calls": [call]}
                )
            pending.append(call["function"]["name"])
        elif speaker == "observation":
            if not pending:
                raise ConversionError("observation with no function_call before it", f"turn {index}")
            messages.append(normalise_message({"role": "tool", "content": value, "name": pending.pop(0)}))
        else:
            raise ConversionError("unknown ShareGPT speaker", repr(speaker))
    return {"messages": _check_conversation(messages), "tools": normalise_tools(row.get("tools"))}


# xlam-function-calling-60k writes Python-ish type names; JSON schema wants its own.
_XLAM_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "set": "array",
    "dict": "object",
    "object": "object",
}


def _xlam_parameter(spec: Any) -> tuple[dict[str, Any], bool]:
    """One xlam-60k parameter spec to (JSON-schema property, required?)."""
    if not isinstance(spec, Mapping):
        raise ConversionError("xlam parameter spec is not an object", repr(spec)[:80])
    raw_type = str(spec.get("type", "")).strip()
    # The dataset writes `"default": ""` (or null) for "no default": such a parameter stays required
    # unless its type says ", optional".
    has_default = spec.get("default") not in (None, "")
    optional = raw_type.endswith(", optional") or has_default
    base = raw_type.removesuffix(", optional").strip()
    outer = base.split("[", 1)[0].strip().lower()
    prop: dict[str, Any] = {}
    if outer in _XLAM_TYPES:
        prop["type"] = _XLAM_TYPES[outer]
    description = str(spec.get("description", "")).strip()
    if base and base.lower() not in _XLAM_TYPES:  # keep what JSON schema cannot say, e.g. List[int]
        description = f"{description} (type: {base})".strip()
    if description:
        prop["description"] = description
    if has_default:
        prop["default"] = spec["default"]
    return prop, not optional


def _xlam_tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
        raise ConversionError("tool schema has no name", repr(tool)[:80])
    parameters = tool.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise ConversionError("xlam tool parameters are not an object", repr(parameters)[:80])
    if parameters.get("type") == "object" and "properties" in parameters:  # already JSON schema
        schema = dict(parameters)
    else:
        properties, required = {}, []
        for name, spec in parameters.items():
            properties[name], is_required = _xlam_parameter(spec)
            if is_required:
                required.append(name)
        schema = {"type": "object", "properties": properties, "required": required}
    function = {"name": tool["name"], "description": str(tool.get("description", "")), "parameters": schema}
    return {"type": "function", "function": function}


def from_xlam60k(row: Row) -> dict[str, Any]:
    """Single-turn ``xlam-function-calling-60k``: ``query`` + ``tools`` + ``answers`` (JSON strings)."""
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConversionError("no query", f"columns {sorted(row)}")
    tools = _loads_json(row.get("tools"), "tools")
    answers = _loads_json(row.get("answers"), "answers")
    if not isinstance(tools, list):
        raise ConversionError("tools is not a list", f"found {type(tools).__name__}")
    if not isinstance(answers, list) or not answers:
        raise ConversionError("answers is not a non-empty list", repr(row.get("answers"))[:80])
    schemas = [_xlam_tool(tool) for tool in tools]
    known = {schema["function"]["name"] for schema in schemas}
    calls = [normalise_tool_call(answer) for answer in answers]
    unknown = [c["function"]["name"] for c in calls if c["function"]["name"] not in known]
    if unknown:
        raise ConversionError("answer calls a tool that is not listed", ", ".join(unknown))
    messages = [
        normalise_message({"role": "user", "content": query}),
        {**normalise_message({"role": "assistant", "content": ""}), "tool_calls": calls},
    ]
    return {"messages": messages, "tools": json.dumps(schemas, ensure_ascii=False)}


def from_preference(row: Row) -> dict[str, Any]:
    """A preference pair in TRL's conversational format (``apigen-mt export --output-format preference``, or
    any ``prompt``/``chosen``/``rejected`` dataset with ``tools``) to a DPO training row."""
    sides: dict[str, Any] = {}
    for side in ("prompt", "chosen", "rejected"):
        messages = row.get(side)
        if not isinstance(messages, list) or not messages:
            raise ConversionError(f"no {side} messages list", f"columns {sorted(row)}")
        sides[side] = [normalise_message(m) for m in messages]
    for side in ("chosen", "rejected"):
        if sides[side][0]["role"] != "assistant":
            raise ConversionError(f"{side} does not open with an assistant turn", sides[side][0]["role"])
    if sides["chosen"] == sides["rejected"]:
        raise ConversionError("chosen and rejected are the same")
    return {**sides, "tools": normalise_tools(row.get("tools"))}


CONVERTERS: dict[str, Callable[[Row], dict[str, Any]]] = {
    "messages": from_messages,
    "sharegpt": from_sharegpt,
    "xlam60k": from_xlam60k,
    "preference": from_preference,
}
# Layouts whose rows are preference pairs (DPO) rather than conversations (SFT).
PREFERENCE_LAYOUTS = frozenset({"preference"})
