"""The run's funnel counted per task, base and recombined drafts as separate series.

``stats.json`` (``datagen.blueprint.funnel``) counts *drafts* per stage: a task revised twice passes
the format check up to three times, so its "passed format" could exceed "proposed" tasks (a demo run
read "proposed 8 -> passed format 11"). Here every count is of tasks: a task passed a stage when any
of its drafts did. A draft's passed stages are a prefix of ``CHECKS`` (the chain stops at the first
failure), so each count is at most the one above it, in each series. Phase 2 continues in the same
unit: accepted blueprints that were simulated, and those with a verified dialogue. Dialogue counts
(attempts, verified, kept) are a second, separate funnel.

A run directory without records (only its summaries) falls back to the summaries' task counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from apigen_rules.fields import count, items, mapping
from datagen.blueprint.stages import CHECKS
from datagen.rundir import DatagenRun, read_rows

KINDS = ("base", "recombined")


@dataclass
class Bar:
    label: str
    counts: dict[str, int]  # kind -> tasks

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class RunFunnel:
    bars: list[Bar] = field(default_factory=list)
    dialogues: dict[str, Any] = field(default_factory=dict)
    rejected_by_stage: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> stage -> tasks
    source: str = "records"  # or "summaries" when the run kept no records

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": "tasks (a task passed a stage when any of its drafts did)",
            "source": self.source,
            "bars": [{"label": b.label, **{k: b.counts.get(k, 0) for k in KINDS}} for b in self.bars],
            "rejected_by_stage": self.rejected_by_stage,
            "dialogues": self.dialogues,
        }


def _kind(row: dict[str, Any], record: dict[str, Any]) -> str:
    kind = record.get("kind") or row.get("kind") or mapping(row.get("provenance")).get("kind") or "base"
    return kind if isinstance(kind, str) and kind in KINDS else "base"


def _passed(record: dict[str, Any]) -> set[str]:
    passed: set[str] = set()
    for attempt in items(record.get("attempts")):
        if isinstance(attempt, dict):
            passed.update(str(s) for s in items(attempt.get("passed")))
    return passed


def _phase2_ids(run: DatagenRun) -> tuple[set[str], set[str], dict[str, Any]]:
    """(blueprints with any attempt, blueprints with a verified dialogue, dialogue counts)."""
    kept = read_rows(run.trajectories)
    failed = read_rows(run.failures)
    dups = read_rows(run.duplicates)
    verified_kept = [r for r in kept if r.get("success", True)]
    failed += [r for r in kept if not r.get("success", True)]
    attempted = {str(r.get("blueprint_id")) for r in kept + failed + dups}
    verified = {str(r.get("blueprint_id")) for r in verified_kept + dups}
    counts = {
        "attempts": len(kept) + len(failed) + len(dups),
        "verified": len(verified_kept) + len(dups),
        "kept_distinct": len(verified_kept),
        "duplicate_successes": len(dups),
        "failed": len(failed),
        "failures": dict(Counter(str(r.get("failure") or "error") for r in failed)),
    }
    return attempted, verified, counts


def run_funnel(run: DatagenRun) -> RunFunnel:
    """The funnel of ``run`` from its records (see the module docstring)."""
    tasks: dict[str, tuple[str, set[str], bool]] = {}  # id -> (kind, stages passed, accepted)
    rejected: dict[str, Counter[str]] = {}
    for row in read_rows(run.blueprints):
        task_id = row.get("id")
        if isinstance(task_id, str) and task_id not in tasks:
            record = mapping(mapping(row.get("provenance")).get("funnel"))
            tasks[task_id] = (_kind(row, record), _passed(record), True)
    for row in read_rows(run.rejections):
        task_id = row.get("task_id")
        if isinstance(task_id, str) and task_id not in tasks:
            record = row.get("funnel") if isinstance(row.get("funnel"), dict) else {}
            kind = _kind(row, record)
            tasks[task_id] = (kind, _passed(record), False)
            rejected.setdefault(kind, Counter())[str(row.get("stage") or "unknown")] += 1
    attempted, verified, dialogue_counts = _phase2_ids(run)
    if not tasks:
        return _from_summaries(run, dialogue_counts)

    def count(select) -> dict[str, int]:
        counted = Counter(
            kind for task_id, (kind, passed, ok) in tasks.items() if select(task_id, passed, ok)
        )
        return {k: counted.get(k, 0) for k in KINDS}

    bars = [Bar("proposed", count(lambda i, p, ok: True))]
    bars += [Bar(f"passed {stage.value}", count(lambda i, p, ok, s=stage.value: s in p)) for stage in CHECKS]
    bars += [
        Bar("accepted", count(lambda i, p, ok: ok)),
        Bar("simulated", count(lambda i, p, ok: ok and i in attempted)),
        Bar("verified dialogue", count(lambda i, p, ok: ok and i in verified)),
    ]
    return RunFunnel(bars, dialogue_counts, {k: dict(v) for k, v in rejected.items()})


def _from_summaries(run: DatagenRun, dialogue_counts: dict[str, Any]) -> RunFunnel:
    """Task counts the summaries hold (their per-stage counts are of drafts, so they are left out)."""
    p1, p2 = run.read_phase1_stats(), run.read_phase2_stats()
    recombined = mapping(p1.get("recombined"))

    def pair(base: Any, other: Any = 0) -> dict[str, int]:
        return {"base": count(base), "recombined": count(other)}

    bars = [
        Bar("proposed", pair(p1.get("proposed"), recombined.get("proposed"))),
        Bar("accepted", pair(p1.get("accepted"), recombined.get("accepted"))),
    ]
    if p2:
        bars += [
            Bar("simulated", pair(p2.get("blueprints_attempted") or p2.get("blueprints"))),
            Bar("verified dialogue", pair(p2.get("blueprints_with_success"))),
        ]
        if not dialogue_counts["attempts"]:
            dialogue_counts = {
                "attempts": count(p2.get("attempts")),
                "verified": count(p2.get("successful_trajectories")) + count(p2.get("duplicate_successes")),
                "kept_distinct": count(p2.get("successful_trajectories")),
                "duplicate_successes": count(p2.get("duplicate_successes")),
                "failed": count(p2.get("failed_trajectories")),
                "failures": {str(k): count(v) for k, v in mapping(p2.get("failures")).items()},
            }
    rejected = {"base": {str(k): count(v) for k, v in mapping(p1.get("rejected_by_stage")).items()}}
    if mapping(recombined.get("rejected_by_stage")):
        rejected["recombined"] = {str(k): count(v) for k, v in recombined["rejected_by_stage"].items()}
    return RunFunnel(bars, dialogue_counts, rejected, source="summaries")
