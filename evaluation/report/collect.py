"""Finds and reads result directories: BFCL-style scores, τ-bench-style summaries, next-action
summaries, datagen runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from apigen_rules.fields import count, items, mapping, number, text_of, texts
from datagen.rundir import BfclRun, DatagenRun, NextActionRun, TauRun, read_json, read_rows
from evaluation.intervals import LEVEL, Interval, pass_k_intervals

# A pass^k curve's intervals are bootstrapped here (for runs that did not save their own) only up to
# this many trials per task: τ runs make a few dozen at most, and the bootstrap's work grows with
# trials × tasks, so a summary claiming millions of trials must not hold the report or a page up.
MAX_COMPUTED_TRIALS = 64


def interval_of(data: Any) -> Interval | None:
    """An interval from its saved form (``Interval.as_dict``); None when absent or not one: any bound
    that is not a finite number, a low above the high, or a level outside (0, 1)."""
    saved = mapping(data)
    value, low, high = (number(saved.get(k)) for k in ("value", "low", "high"))
    level = number(saved.get("level", LEVEL))
    if value is None or low is None or high is None or level is None:
        return None
    return Interval(value, low, high, level) if low <= high and 0 < level < 1 else None


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


def saved_intervals(value: Any) -> dict[str, Interval]:
    """The intervals of a mapping of saved intervals (names as text); anything else is left out."""
    return {text_of(k): i for k, v in mapping(value).items() if (i := interval_of(v))}


@dataclass
class BfclResult:
    model: str
    path: Path  # the score folder
    categories: dict[str, float]
    overall: dict[str, float]
    intervals: dict[str, Any] = field(default_factory=dict)  # scores.json "intervals" (any JSON value)

    def verdicts(self) -> dict[str, dict[str, bool]]:
        """{category: {item id: correct}} from verdicts.jsonl beside the scores ({} without it)."""
        return self._verdicts

    def overall_intervals(self) -> dict[str, Interval]:
        """The group and overall scores' intervals: the run's own, else bootstrapped here from its
        verdicts (scores written before intervals were)."""
        saved = saved_intervals(mapping(self.intervals).get("overall"))
        if saved:
            return saved
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

    def pass_k(self, key: str = "pass_k") -> dict[int, float]:
        """One of the summary's pass^k curves (``pass_k``, ``pass_k_state_changing_only``)."""
        return curve(self.summary.get(key))

    def per_task(self) -> dict[str, tuple[int, int]]:
        """{task: (successes, trials)} of the complete tasks: per_task.json, else the summary; a task
        whose counts are not whole numbers with successes <= trials is left out."""
        saved = mapping(read_json(TauRun(self.path).per_task))
        trials = count(self.summary.get("trials"))
        out = {}
        for task, successes in mapping(self.summary.get("per_task_successes")).items():
            entry = mapping(saved.get(task))
            if count(entry.get("trials")):
                s, n = count(entry.get("successes", successes)), count(entry["trials"])
            else:
                s, n = count(successes), trials
            if n > 0 and s <= n:
                out[task] = (s, n)
        return out

    def pass_1_per_task(self) -> dict[str, float]:
        return {task: s / n for task, (s, n) in self.per_task().items() if n}

    def noop_tasks(self) -> set[str]:
        return {text_of(t) for t in items(self.summary.get("noop_gold_tasks"))}

    def pass_k_intervals(self, key: str = "pass_k") -> dict[str, Interval]:
        """{k: interval} of a pass^k curve: the run's own (``<key>_interval`` in its summary), else
        bootstrapped here over the tasks' recorded successes (the curve's tasks: all, the
        state-changing ones, or those the simulated user did not spoil)."""
        saved = saved_intervals(self.summary.get(f"{key}_interval"))
        if {str(k) for k in self.pass_k(key)} <= set(saved):
            return saved
        return {**self._computed_intervals(key), **saved}

    def _computed_intervals(self, key: str) -> dict[str, Interval]:
        left_out = {
            "pass_k": set(),
            "pass_k_state_changing_only": self.noop_tasks(),
            "pass_k_without_user_error_tasks": set(texts(self.summary.get("user_error_tasks"))),
        }.get(key)
        tasks = {t: v for t, v in self.per_task().items() if left_out is not None and t not in left_out}
        trials = {n for _, n in tasks.values()}
        if not tasks or len(trials) != 1 or trials.pop() > MAX_COMPUTED_TRIALS:
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
        saved = saved_intervals(mapping(self.summary.get("overall")).get("intervals"))
        if saved:
            return saved
        from evaluation.intervals import ratio_intervals

        return ratio_intervals(list(self.dialogues().values()))

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
                        _bfcl_model(path), path.parent, scores(data["categories"]), scores(data["overall"]),
                        mapping(data.get("intervals")),
                    )
                )  # fmt: skip
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
