"""The Phase 1 funnel: counts rebuilt from the run directory's records, so a resumed run reports the
same totals as one that never stopped. Every finished task is one record (accepted or rejected)
carrying its attempts and token use. The stages counted are ``datagen.blueprint.stages.CHECKS``, in order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.stages import CHECKS


@dataclass
class Funnel:
    tasks: Counter[str] = field(default_factory=Counter)  # kind -> finished tasks
    accepted: Counter[str] = field(default_factory=Counter)  # kind -> accepted
    drafts: Counter[str] = field(default_factory=Counter)  # kind -> drafts (first drafts + revisions)
    passed: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> stage -> drafts that passed
    accepted_per_round: Counter[int] = field(default_factory=Counter)
    rejected_by_stage: dict[str, Counter[str]] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, record: dict[str, Any], accepted: bool) -> None:
        """``record``: a blueprint's ``provenance["funnel"]`` or a rejection's ``funnel`` entry."""
        kind = record["kind"]
        self.tasks[kind] += 1
        passed = self.passed.setdefault(kind, Counter())
        for attempt in record["attempts"]:
            self.drafts[kind] += 1
            passed.update(attempt["passed"])
        if accepted:
            self.accepted[kind] += 1
            if kind == "base":
                self.accepted_per_round[int(record["round"])] += 1
        else:
            self.rejected_by_stage.setdefault(kind, Counter())[record.get("stage") or "unknown"] += 1
        self.prompt_tokens += int(record["usage"].get("prompt_tokens", 0))
        self.completion_tokens += int(record["usage"].get("completion_tokens", 0))

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())

    def as_dict(self) -> dict[str, Any]:
        base_tasks = self.tasks["base"]
        accepted = self.total_accepted
        tokens = self.prompt_tokens + self.completion_tokens
        return {
            "proposed": base_tasks,
            "drafts": self.drafts["base"],
            "passed": {s.value: self.passed.get("base", Counter())[s] for s in CHECKS},
            "accepted": self.accepted["base"],
            "accepted_per_round": {str(r): n for r, n in sorted(self.accepted_per_round.items())},
            "acceptance_rate": self.accepted["base"] / base_tasks if base_tasks else 0.0,
            "first_round_acceptance_rate": self.accepted_per_round[0] / base_tasks if base_tasks else 0.0,
            "rejected_by_stage": dict(self.rejected_by_stage.get("base", Counter())),
            "recombined": {
                "proposed": self.tasks["recombined"],
                "passed": {s.value: self.passed.get("recombined", Counter())[s] for s in CHECKS},
                "accepted": self.accepted["recombined"],
                "rejected_by_stage": dict(self.rejected_by_stage.get("recombined", Counter())),
            },
            "total_accepted": accepted,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens, "total": tokens},
            "tokens_per_accepted": tokens / accepted if accepted else None,
        }

    def summary_line(self) -> str:
        d = self.as_dict()
        passed = " | ".join(f"{stage} {count}" for stage, count in d["passed"].items())
        return (
            f"proposed {d['proposed']} | drafts {d['drafts']} | {passed} | accepted {d['accepted']} "
            f"({d['acceptance_rate']:.0%}; first round {d['first_round_acceptance_rate']:.0%}) | "
            f"recombined {d['recombined']['accepted']}/{d['recombined']['proposed']}"
        )
