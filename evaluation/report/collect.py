"""Finds and reads result directories: BFCL-style scores, τ-bench-style summaries, next-action
summaries, datagen runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun, DatagenRun, NextActionRun, TauRun, read_json


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
class NextActionResult:
    model: str
    path: Path
    summary: dict[str, Any]

    @property
    def label(self) -> str:
        """The data it was measured on, for tables: its sources' folder names and the split."""
        names = ", ".join(Path(d).name for d in self.summary.get("data") or [])
        return f"{names} ({self.summary.get('split', '?')})"


@dataclass
class DatagenFunnel:
    name: str
    path: Path
    phase1: dict[str, Any]
    phase2: dict[str, Any]


@dataclass
class Collected:
    bfcl: list[BfclResult] = field(default_factory=list)
    tau: list[TauResult] = field(default_factory=list)
    next_action: list[NextActionResult] = field(default_factory=list)
    runs: list[DatagenFunnel] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _bfcl_model(scores_path: Path) -> str:
    for folder in [scores_path.parent, *scores_path.parents]:
        data = BfclRun(folder).read_metadata()
        if data is not None:
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
        for scores in BfclRun.find_scores(root):
            data = read_json(scores)
            if data and "categories" in data and "overall" in data:
                found.bfcl.append(
                    BfclResult(_bfcl_model(scores), scores.parent, data["categories"], data["overall"])
                )
                hits += 1
        for tau in TauRun.find(root):
            data = tau.read_summary()
            if data and "pass_k" in data and "env" in data:
                found.tau.append(TauResult(str(data.get("agent", "?")), str(data["env"]), tau.root, data))
                hits += 1
        for na in NextActionRun.find(root):
            data = na.read_summary()
            if data and "overall" in data:
                found.next_action.append(NextActionResult(str(data.get("model", "?")), na.root, data))
                hits += 1
        for run in DatagenRun.find(root):
            found.runs.append(
                DatagenFunnel(run.root.name, run.root, run.read_phase1_stats(), run.read_phase2_stats())
            )
            hits += 1
        if not hits:
            found.ignored.append(
                f"{root}: no BFCL scores, τ summary, next-action summary or datagen run inside"
            )
    return found
