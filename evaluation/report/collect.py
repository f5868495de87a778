"""Finds and reads result directories: BFCL-style scores, τ-bench-style summaries, next-action
summaries, datagen runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datagen.fields import mapping, number, text_of, texts
from datagen.rundir import BfclRun, DatagenRun, NextActionRun, TauRun, read_json


def curve(value: Any) -> dict[int, float]:
    """A pass^k curve as a summary holds it (``{"1": 0.5, ...}``): the entries whose k is a whole
    number and whose value is a number, by k; anything else in the mapping is left out."""
    points = {}
    for k, v in mapping(value).items():
        if k.isdecimal() and len(k) < 9 and (n := number(v)) is not None:
            points[int(k)] = n
    return dict(sorted(points.items()))


def scores(value: Any) -> dict[str, float]:
    """The numeric entries of a mapping of scores (names as text)."""
    return {text_of(k): n for k, v in mapping(value).items() if (n := number(v)) is not None}


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

    def pass_k(self, key: str = "pass_k") -> dict[int, float]:
        """One of the summary's pass^k curves (``pass_k``, ``pass_k_state_changing_only``)."""
        return curve(self.summary.get(key))


@dataclass
class NextActionResult:
    model: str
    path: Path
    summary: dict[str, Any]

    @property
    def label(self) -> str:
        """The data it was measured on, for tables: its sources' folder names and the split."""
        names = ", ".join(Path(d).name for d in texts(self.summary.get("data")))
        return f"{names} ({text_of(self.summary.get('split', '?'))})"

    @property
    def overall(self) -> dict[str, float]:
        return scores(self.summary.get("overall"))


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
            return text_of(data.get("label") or data.get("model") or folder.name)
    return scores_path.parent.parent.name


def collect(dirs: list[Path]) -> Collected:
    """Every result under the given directories (searched recursively), each read once."""
    found = Collected()
    for root in dirs:
        if not root.exists():
            found.ignored.append(f"{root}: does not exist")
            continue
        hits = 0
        for path in BfclRun.find_scores(root):
            data = read_json(path)
            if data and "categories" in data and "overall" in data:
                found.bfcl.append(
                    BfclResult(
                        _bfcl_model(path), path.parent, scores(data["categories"]), scores(data["overall"])
                    )
                )
                hits += 1
        for tau in TauRun.find(root):
            data = tau.read_summary()
            if data and "pass_k" in data and "env" in data:
                found.tau.append(
                    TauResult(text_of(data.get("agent", "?")), text_of(data["env"]), tau.root, data)
                )
                hits += 1
        for na in NextActionRun.find(root):
            data = na.read_summary()
            if data and "overall" in data:
                found.next_action.append(NextActionResult(text_of(data.get("model", "?")), na.root, data))
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
