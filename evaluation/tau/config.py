"""τ-bench-style evaluation recipes (``recipes/eval/tau/*.yaml``; every key can also come from a flag).

The agent under test and the simulated user are the same roles Phase 2 uses
(:class:`datagen.simulate.config.EpisodeConfig`), built by the same build layer, so an evaluation
and a data-generation run set up their dialogues identically.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from datagen.recipe import Recipe
from datagen.simulate.config import EpisodeConfig, UserRole


class TauUserRole(UserRole):
    best_of_n: int = Field(1, ge=1)  # a fixed, named user; Best-of-N off unless asked for


class TauConfig(Recipe, EpisodeConfig):
    env: str = Field(description="domain name (retail, airline, bank, tau2-retail, ...)")
    tasks: str | None = Field(
        None, description="a split (gold/test/train/base/all) or comma-separated task ids; default: held-out"
    )
    limit: int | None = Field(None, ge=1, description="only the first N selected tasks")
    user: TauUserRole = Field(default_factory=TauUserRole)
    trials: int = Field(4, ge=1)
    concurrency: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _agent_is_under_test(self) -> TauConfig:
        if self.agent.mode != "model":
            raise ValueError(
                "the agent under test must act on its own (agent.mode: model); replay is for data generation"
            )
        return self
