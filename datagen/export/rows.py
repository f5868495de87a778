"""Trajectories to dataset rows, and rows to splits.

How the ``hf`` export stores a conversation (one Parquet row per trajectory):

- ``messages``: a list of structs ``{role, content, tool_calls, tool_call_id, name}``; a tool call is
  ``{id, type, function: {name, arguments}}`` with ``arguments`` a JSON-object *string*. Structs are
  what the Hub's viewer draws as a chat and what chat templates and TRL read as messages. The
  arguments stay a string because every tool has other keys: as a struct, Arrow would merge the
  keys of all tools into one schema and hand back ``None`` for every argument a call never had.
  Our templates (and TRL's, and Qwen3's) write a string argument verbatim, an object as its JSON.
- ``tools``: the OpenAI function-tool schemas as one JSON string, for the same reason; TRL
  ``json.loads`` a string ``tools`` column per row before it applies the chat template.

This is the row ``training.convert`` produces from any layout, so an export is read back there
unchanged (``tests/test_export.py`` checks the two agree).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from datagen.records import Trajectory

SPLIT_NAMES = ("train", "validation", "test")
MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
SPLIT_RULE = (
    "split by blueprint: u = the first 8 bytes of sha256('<seed>:<blueprint_id>') / 2^64; "
    "test if u < test fraction, else validation if u < test + validation fraction, else train. "
    "All dialogues of one blueprint share a split."
)


def message_features() -> dict[str, Any]:
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


def hf_features():
    from datasets import Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "messages": List(message_features()),
            "tools": Value("string"),
            "env": Value("string"),
            "blueprint_id": Value("string"),
            "persona": Value("string"),
            "source_models": List({"role": Value("string"), "model": Value("string")}),
            "agent_mode": Value("string"),
            "reward": Value("float64"),
        }
    )


def trajectory_row(trajectory: Trajectory) -> dict[str, Any]:
    """The row every format starts from; messages and tools as the trajectory holds them."""
    return {
        "id": trajectory.id,
        "messages": trajectory.messages,
        "tools": trajectory.tools,
        "env": trajectory.env,
        "blueprint_id": trajectory.blueprint_id,
        "persona": trajectory.persona,
        "source_models": trajectory.models,
        "agent_mode": trajectory.agent_mode,
        "reward": trajectory.reward,
    }


def _hf_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    arguments = function["arguments"]
    return {
        "id": call.get("id"),
        "type": call.get("type", "function"),
        "function": {
            "name": function["name"],
            "arguments": arguments
            if isinstance(arguments, str)
            else json.dumps(arguments, ensure_ascii=False),
        },
    }


def hf_message(message: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(message) - set(MESSAGE_KEYS))
    if unknown:
        # A struct column keeps only the keys it declares: refuse rather than drop data quietly.
        raise ValueError(
            f"{where}: message keys {unknown} have no column in the hf export (expected {list(MESSAGE_KEYS)}); "
            "export with --format jsonl to keep them"
        )
    return {
        "role": message["role"],
        "content": message.get("content") or "",
        "tool_calls": [_hf_call(c) for c in message["tool_calls"]] if message.get("tool_calls") else None,
        "tool_call_id": message.get("tool_call_id"),
        "name": message.get("name"),
    }


def hf_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``trajectory_row`` in the stored shape described above."""
    return {
        **row,
        "messages": [
            hf_message(m, f"trajectory {row['id']} message {i}") for i, m in enumerate(row["messages"])
        ],
        "tools": json.dumps(row["tools"], ensure_ascii=False),
        "source_models": [{"role": r, "model": m} for r, m in (row["source_models"] or {}).items()],
    }


def split_of(blueprint_id: str, seed: int, validation: float, test: float) -> str:
    """The split a blueprint belongs to: a deterministic draw from (seed, blueprint id); see SPLIT_RULE."""
    digest = hashlib.sha256(f"{seed}:{blueprint_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test:
        return "test"
    if u < test + validation:
        return "validation"
    return "train"


def split_rows(
    rows: Iterable[dict[str, Any]], *, seed: int, validation: float = 0.0, test: float = 0.1
) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by split; every row of one blueprint lands in the same split."""
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError(
            f"validation and test fractions must be >= 0 and sum below 1; got {validation} and {test}"
        )
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    for row in rows:
        splits[split_of(row["blueprint_id"], seed, validation, test)].append(row)
    return {name: part for name, part in splits.items() if part}
