"""The APIGen-MT ShareGPT layout (as in the released APIGen-MT-5k data), both ways.

A row is ``{"conversations": [{"from": human|gpt|function_call|observation, "value": str}],
"system": policy, "tools": JSON string}``; a function_call value is ``{"name", "arguments"}`` as JSON.
Call ids and tool-message names are not stored there; the importer rebuilds them the way the
simulator writes them (``call_<message index>_<call index>``), so our trajectories round-trip exactly.
"""

from __future__ import annotations

import json
from typing import Any

ROLE_TO_FROM = {"user": "human", "assistant": "gpt"}


class ShareGPTError(ValueError):
    """A row that does not follow the layout; the message names the row and the turn."""


def to_sharegpt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    system = ""
    turns: list[dict[str, str]] = []
    for message in messages:
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
                value = {"name": fn["name"], "arguments": fn["arguments"]}
                turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
        else:
            raise ShareGPTError(f"message role {role!r} has no ShareGPT counterpart")
    return {"conversations": turns, "system": system, "tools": json.dumps(tools, ensure_ascii=False)}


def _parse_call(value: str, where: str) -> dict[str, Any]:
    try:
        call = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ShareGPTError(f"{where}: function_call value is not JSON ({exc.msg})") from exc
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ShareGPTError(
            f'{where}: function_call value must be {{"name", "arguments"}}; found {value[:80]!r}'
        )
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):  # some copies of the data store arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ShareGPTError(f"{where}: arguments string is not JSON ({exc.msg})") from exc
    if not isinstance(arguments, dict):
        raise ShareGPTError(f"{where}: arguments must be an object; found {type(arguments).__name__}")
    return {"name": call["name"], "arguments": arguments}


def from_sharegpt(
    row: dict[str, Any], *, row_id: str = "?"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages in OpenAI chat format, tool schemas) from one ShareGPT row."""
    tools = row.get("tools", "[]")
    try:
        tools = json.loads(tools) if isinstance(tools, str) else tools
    except json.JSONDecodeError as exc:
        raise ShareGPTError(f"row {row_id}: tools is not a JSON string ({exc.msg})") from exc
    messages: list[dict[str, Any]] = []
    if row.get("system"):
        messages.append({"role": "system", "content": row["system"]})
    pending: list[str] = []  # names of calls awaiting observations, in order
    for index, turn in enumerate(row.get("conversations") or []):
        where = f"row {row_id} turn {index}"
        kind, value = turn.get("from"), turn.get("value", "")
        if kind == "human":
            messages.append({"role": "user", "content": value})
        elif kind == "gpt":
            messages.append({"role": "assistant", "content": value})
        elif kind == "function_call":
            call = _parse_call(value, where)
            # Calls directly after an assistant turn (text or calls) belong to that same message.
            last = messages[-1] if messages else None
            if not (last and last["role"] == "assistant"):
                last = {"role": "assistant", "content": ""}
                messages.append(last)
            calls = last.setdefault("tool_calls", [])
            position = len(messages) - 1 - (1 if messages[0]["role"] == "system" else 0)
            calls.append({"id": f"call_{position}_{len(calls)}", "type": "function", "function": call})
            pending.append(last["tool_calls"][-1]["id"])
        elif kind == "observation":
            if not pending:
                raise ShareGPTError(f"{where}: observation with no function_call before it")
            call_id = pending.pop(0)
            name = next(
                c["function"]["name"] for m in messages for c in m.get("tool_calls", []) if c["id"] == call_id
            )
            messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": value})
        else:
            raise ShareGPTError(
                f"{where}: unknown 'from' value {kind!r}; expected human, gpt, function_call or observation"
            )
    return messages, tools
