"""τ-bench-style evaluation recipes (``recipes/eval/tau/*.yaml``; every key can also come from a flag).

The agent under test and the simulated user are the same roles Phase 2 uses
(:class:`datagen.recipe.episode.EpisodeConfig`), built by the same build layer, so an evaluation
and a data-generation run set up their dialogues identically.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from datagen.recipe import Recipe
from datagen.recipe.episode import EpisodeConfig, UserRole


class TauUserRole(UserRole):
    """The simulated user the agent under test faces: a fixed, named model (Best-of-N off unless asked)."""

    best_of_n: int = Field(1, ge=1, description="candidate user turns per turn; 1: Best-of-N off")


class TauConfig(Recipe, EpisodeConfig):
    """A τ-bench-style run: the agent under test, the simulated user, the domain, the tasks and trials."""

    env: str = Field(description="domain name (retail, airline, bank, tau2-retail, ...)")
    tasks: str | None = Field(
        None, description="a split (gold/test/train/base/all) or comma-separated task ids; default: held-out"
    )
    limit: int | None = Field(None, ge=1, description="only the first N selected tasks")
    user: TauUserRole = Field(
        default_factory=TauUserRole, description="the simulated user's model alias and settings"
    )
    trials: int = Field(4, ge=1, description="trials per task (pass^k is reported for k up to this)")
    concurrency: int = Field(64, ge=1, description="trials in flight at once (per worker under Ray)")

    @model_validator(mode="after")
    def _agent_is_under_test(self) -> TauConfig:
        if self.agent.mode != "model":
            raise ValueError(
                "the agent under test must act on its own (agent.mode: model); replay is for data generation"
            )
        return self
