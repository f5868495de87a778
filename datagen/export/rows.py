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

from apigen_rules.messages import MESSAGE_KEYS, message_features
from apigen_rules.values import normal_form
from datagen.records import Blueprint, Trajectory

SPLIT_NAMES = ("train", "validation", "test")
GROUP_BY = ("blueprint", "user")
SPLIT_RULE = (
    "split by group of blueprints: two blueprints are in one group when one was recombined from the "
    "other, when they share a ground-truth call (same tool, same arguments) or when their instructions "
    "read the same{user}; a group's key is its smallest blueprint id, and u = the first 8 bytes of "
    "sha256('<seed>:<key>') / 2^64: test if u < test fraction, else validation if u < test + validation "
    "fraction, else train. All dialogues of a group share a split, so no ground-truth call and no "
    "instruction of one split appears in another."
)


def split_rule(group_by: str = "blueprint") -> str:
    """The split rule in words, as the dataset card states it."""
    return SPLIT_RULE.format(user=", or when they are tasks of the same user" if group_by == "user" else "")


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
            "user_mode": Value("string"),
            "reward": Value("float64"),
            "seed": Value("int64"),
            "grounded": Value("bool"),
            "verification": Value("string"),
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
        "user_mode": trajectory.user_mode,
        "reward": trajectory.reward,
        "seed": trajectory.seed,
        "grounded": grounded(trajectory),
        # how Phase 2 verified it: "state" (final state hash), or "actions" for a remote environment
        # without state (its write calls against the replayed ground truth's); runs before this: state
        "verification": trajectory.checks.get("verification", "state"),
    }


def grounded(trajectory: Trajectory) -> bool | None:
    """Whether the dialogue passed Phase 2's provenance check; None when it was not checked (older runs)."""
    if "ungrounded_arguments" not in trajectory.checks:
        return None
    return not trajectory.checks["ungrounded_arguments"]


def _hf_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    arguments = function.get("arguments")  # null or blank: a call without arguments (apigen_rules.messages)
    return {
        "id": call.get("id"),
        "type": call.get("type", "function"),
        "function": {
            "name": function["name"],
            "arguments": arguments
            if isinstance(arguments, str) and arguments.strip()
            else json.dumps(arguments or {}, ensure_ascii=False),
        },
    }


def hf_message(message: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(message) - set(MESSAGE_KEYS))
    if unknown:
        # A struct column keeps only the keys it declares: refuse rather than drop data quietly.
        raise ValueError(
            f"{where}: message keys {unknown} have no column in the hf export (expected {list(MESSAGE_KEYS)}); "
            "export with --output-format jsonl to keep them"
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


def split_of(key: str, seed: int, validation: float, test: float) -> str:
    """The split of a group key (a blueprint id, see :func:`split_groups`): a deterministic draw from
    (seed, key); see SPLIT_RULE."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test:
        return "test"
    if u < test + validation:
        return "validation"
    return "train"


def _call_key(call: Any) -> str:
    data = call.model_dump() if hasattr(call, "model_dump") else call
    return json.dumps([data.get("name"), data.get("arguments")], sort_keys=True, ensure_ascii=False)


def split_groups(blueprints: Iterable[Blueprint], group_by: str = "blueprint") -> dict[str, str]:
    """Blueprint id -> the key of its group (SPLIT_RULE): the connected parts of the links
    "recombined from", "shares a ground-truth call", "reads the same instruction" and, with
    ``group_by="user"``, "same user"; a key is the smallest blueprint id of its part."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by: expected one of {GROUP_BY}, found {group_by!r}")
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    ids: list[str] = []
    for blueprint in blueprints:
        node = f"bp:{blueprint.id}"
        ids.append(blueprint.id)
        find(node)
        for other in blueprint.provenance.get("parents") or []:
            join(node, f"bp:{other}")
        for call in blueprint.actions:
            join(node, f"call:{_call_key(call)}")
        if blueprint.instruction.strip():
            join(node, f"instruction:{normal_form(blueprint.instruction)}")
        if group_by == "user" and blueprint.user_id:
            join(node, f"user:{blueprint.user_id}")
    members: dict[str, list[str]] = {}
    for blueprint_id in ids:
        members.setdefault(find(f"bp:{blueprint_id}"), []).append(blueprint_id)
    return {b: min(part) for part in members.values() for b in part}


def split_rows(
    rows: Iterable[dict[str, Any]],
    *,
    seed: int,
    validation: float = 0.0,
    test: float = 0.1,
    groups: dict[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by split; every row of one group of blueprints (``groups``, from
    :func:`split_groups`; a blueprint it does not list is a group of its own) lands in the same split."""
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError(
            f"validation and test fractions must be >= 0 and sum below 1; got {validation} and {test}"
        )
    groups = groups or {}
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    for row in rows:
        key = groups.get(row["blueprint_id"], row["blueprint_id"])
        splits[split_of(key, seed, validation, test)].append(row)
    return {name: part for name, part in splits.items() if part}
