"""Finds and reads result directories: BFCL-style scores, τ-bench-style summaries, next-action
summaries, datagen runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun, DatagenRun, NextActionRun, TauRun, read_json, read_rows
from evaluation.intervals import Interval, pass_k_intervals


def interval_of(data: Any) -> Interval | None:
    """An interval from its saved form (``Interval.as_dict``); None when absent or not one."""
    if not isinstance(data, dict) or not {"value", "low", "high"} <= set(data):
        return None
    try:
        return Interval(
            float(data["value"]), float(data["low"]), float(data["high"]), float(data.get("level", 0.95))
        )
    except (TypeError, ValueError):
        return None


@dataclass
class BfclResult:
    model: str
    path: Path  # the score folder
    categories: dict[str, float]
    overall: dict[str, float]
    intervals: dict[str, Any] = field(default_factory=dict)  # scores.json "intervals" (may be absent)

    def verdicts(self) -> dict[str, dict[str, bool]]:
        """{category: {item id: correct}} from verdicts.jsonl beside the scores ({} without it)."""
        return self._verdicts

    def overall_intervals(self) -> dict[str, Interval]:
        """The group and overall scores' intervals: the run's own, else bootstrapped here from its
        verdicts (scores written before intervals were)."""
        saved = {k: interval_of(v) for k, v in (self.intervals.get("overall") or {}).items()}
        if saved:
            return {k: v for k, v in saved.items() if v}
        if not self.verdicts():
            return {}
        from evaluation.bfcl.scoring import CategoryScore, ItemVerdict, summary_intervals

        scores = {
            c: CategoryScore(c, sum(v.values()), len(v), [ItemVerdict(i, ok) for i, ok in v.items()])
            for c, v in self.verdicts().items()
        }
        return summary_intervals(scores)

    @cached_property
    def _verdicts(self) -> dict[str, dict[str, bool]]:
        found: dict[str, dict[str, bool]] = {}
        for row in read_rows(BfclRun.verdicts_file(self.path)):
            if isinstance(row.get("category"), str) and isinstance(row.get("id"), str):
                found.setdefault(row["category"], {})[row["id"]] = bool(row.get("valid"))
        return found


@dataclass
class TauResult:
    model: str
    env: str
    path: Path
    summary: dict[str, Any]

    def per_task(self) -> dict[str, tuple[int, int]]:
        """{task: (successes, trials)} of the complete tasks: per_task.json, else the summary."""
        saved = read_json(TauRun(self.path).per_task) or {}
        complete = self.summary.get("per_task_successes") or {}
        trials = int(self.summary.get("trials") or 0)
        out = {}
        for task, successes in complete.items():
            entry = saved.get(task) if isinstance(saved, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("trials"), int):
                out[task] = (int(entry.get("successes", successes)), entry["trials"])
            elif trials:
                out[task] = (int(successes), trials)
        return out

    def pass_1_per_task(self) -> dict[str, float]:
        return {task: s / n for task, (s, n) in self.per_task().items() if n}

    def noop_tasks(self) -> set[str]:
        return set(self.summary.get("noop_gold_tasks") or [])

    def pass_k_intervals(self, key: str = "pass_k") -> dict[str, Interval]:
        """{k: interval} of a pass^k curve: the run's own (``<key>_interval`` in its summary), else
        bootstrapped here over the tasks' recorded successes (the curve's tasks: all, the
        state-changing ones, or those the simulated user did not spoil)."""
        saved = {
            k: i for k, v in (self.summary.get(f"{key}_interval") or {}).items() if (i := interval_of(v))
        }
        if set(self.summary.get(key) or {}) <= set(saved):
            return saved
        return {**self._computed_intervals(key), **saved}

    def _computed_intervals(self, key: str) -> dict[str, Interval]:
        left_out = {
            "pass_k": set(),
            "pass_k_state_changing_only": self.noop_tasks(),
            "pass_k_without_user_error_tasks": set(self.summary.get("user_error_tasks") or []),
        }.get(key)
        tasks = {t: v for t, v in self.per_task().items() if left_out is not None and t not in left_out}
        if not tasks or len({n for _, n in tasks.values()}) != 1:
            return {}
        outcomes = {t: [True] * s + [False] * (n - s) for t, (s, n) in tasks.items()}
        return {str(k): i for k, i in pass_k_intervals(outcomes).items()}


@dataclass
class NextActionResult:
    model: str
    path: Path
    summary: dict[str, Any]

    def dialogues(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Per dialogue, every figure's (numerator, denominator) from the run's turns."""
        return self._dialogues

    @cached_property
    def _dialogues(self) -> dict[str, dict[str, tuple[float, float]]]:
        from evaluation.next_action.scoring import dialogue_parts

        return dialogue_parts(read_rows(NextActionRun(self.path).turns))

    def intervals(self) -> dict[str, Interval]:
        """The overall figures' intervals: the run's own, else bootstrapped here from its turns."""
        saved = {
            k: interval_of(v) for k, v in (self.summary.get("overall", {}).get("intervals") or {}).items()
        }
        if saved:
            return {k: v for k, v in saved.items() if v}
        from evaluation.intervals import ratio_intervals

        return ratio_intervals(list(self.dialogues().values()))

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
                    BfclResult(
                        _bfcl_model(scores), scores.parent, data["categories"], data["overall"],
                        data.get("intervals") if isinstance(data.get("intervals"), dict) else {},
                    )
                )  # fmt: skip
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
