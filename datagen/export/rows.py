"""Trajectories to dataset rows, and rows to splits.

Messages and tool schemas are stored with the `datasets` ``Json`` feature: each message keeps
exactly the keys it had and tool-call arguments stay objects, whatever tool they belong to. A plain
Arrow struct would merge the keys of every tool's arguments (and of every message role) into one
schema and hand back ``None`` for the ones a row never had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from datagen.records import Trajectory

SPLIT_NAMES = ("train", "validation", "test")


def hf_features():
    from datasets import Features, Json, List, Value

    return Features(
        {
            "id": Value("string"),
            "messages": List(Json()),
            "tools": List(Json()),
            "env": Value("string"),
            "blueprint_id": Value("string"),
            "persona": Value("string"),
            "source_models": Json(),
            "agent_mode": Value("string"),
            "reward": Value("float64"),
        }
    )


def trajectory_row(trajectory: Trajectory) -> dict[str, Any]:
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


def split_of(blueprint_id: str, seed: int, validation: float, test: float) -> str:
    """The split a blueprint belongs to: a deterministic draw from (seed, blueprint id)."""
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
