"""Finds and reads result directories: BFCL-style scores, τ-bench-style summaries, datagen runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BfclResult:
    model: str
    path: Path
    categories: dict[str, float]
    overall: dict[str, float]


@dataclass
class TauResult:
    model: str
    env: str
    path: Path
    summary: dict[str, Any]


@dataclass
class DatagenRun:
    name: str
    path: Path
    phase1: dict[str, Any]
    phase2: dict[str, Any]


@dataclass
class Collected:
    bfcl: list[BfclResult] = field(default_factory=list)
    tau: list[TauResult] = field(default_factory=list)
    runs: list[DatagenRun] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _bfcl_model(scores_path: Path) -> str:
    for folder in [scores_path.parent, *scores_path.parents]:
        meta = folder / "run_metadata.json"
        if meta.exists():
            data = _read(meta)
            return str(data.get("label") or data.get("model") or folder.name)
    return scores_path.parent.parent.name


def collect(dirs: list[Path]) -> Collected:
    """Every result under the given directories (searched recursively), each read once."""
    found = Collected()
    for root in dirs:
        if not root.exists():
            found.ignored.append(f"{root}: does not exist")
            continue
        hits = 0
        for scores in sorted(root.rglob("scores.json")):
            data = _read(scores)
            if "categories" in data and "overall" in data:
                found.bfcl.append(
                    BfclResult(_bfcl_model(scores), scores.parent, data["categories"], data["overall"])
                )
                hits += 1
        for summary in sorted(root.rglob("summary.json")):
            data = _read(summary)
            if "pass_k" in data and "env" in data:
                found.tau.append(
                    TauResult(str(data.get("agent", "?")), str(data["env"]), summary.parent, data)
                )
                hits += 1
        for stats in sorted(root.rglob("simulate_stats.json")):
            phase1 = stats.parent / "stats.json"
            found.runs.append(
                DatagenRun(
                    stats.parent.name, stats.parent, _read(phase1) if phase1.exists() else {}, _read(stats)
                )
            )
            hits += 1
        if not hits:
            found.ignored.append(f"{root}: no BFCL scores.json, τ summary.json or datagen run inside")
    return found
