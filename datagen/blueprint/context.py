"""What every task of a run shares: the domain, the models, the rendered system prompts, the few-shot
pool and the near-duplicate index. One per run; used from one event loop (no locks needed: nothing
awaits between a duplicate check and its insertion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.committee import Judge
from datagen.blueprint.grounding import StatePlanner
from datagen.blueprint.samplers import FewshotPool, UserIndex
from datagen.envs.base import Domain
from datagen.llm.types import ChatModel, Usage
from datagen.recipe.datagen import DatagenRecipe


@dataclass
class RunContext:
    config: DatagenRecipe
    domain: Domain
    generator: ChatModel
    judges: list[Judge]
    generator_system: str
    judge_system: str
    pool: FewshotPool
    traits: list[str]
    db_seed: int
    users: UserIndex
    planner: StatePlanner
    session: int = 0
    accepted_keys: set[str] = field(default_factory=set)  # near-duplicate keys of accepted blueprints


@dataclass
class Attempt:
    """One draft (round) of one task and how far it got through the validators."""

    round: int
    passed: list[str] = field(default_factory=list)
    failed_stage: str | None = None
    reasons: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "passed": self.passed,
            "failed_stage": self.failed_stage,
            "reasons": self.reasons[:10],
        }


@dataclass
class TaskOutcome:
    """A finished task: accepted (``blueprint``) or rejected (``stage``/``reasons``), with its attempts."""

    task_id: str
    kind: str  # "base" | "recombined"
    attempts: list[Attempt]
    usage: Usage
    blueprint: Any = None  # datagen.records.Blueprint when accepted
    stage: str | None = None
    reasons: list[str] = field(default_factory=list)
    draft: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
