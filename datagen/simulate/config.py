"""Episode settings: the agent's and the simulated user's roles, and Phase 2's `simulate:` section.

:class:`EpisodeConfig` is what the build layer (:mod:`datagen.runner.build`) needs to set up one
dialogue; Phase 2 (:class:`SimulateConfig`) and the τ harness (``evaluation.tau.config.TauConfig``)
both extend it, so the two can never build their sides differently.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from datagen.recipe import Role, Strict
from datagen.simulate.agent import AgentMode
from datagen.simulate.scripted_user import UserMode


class AgentRole(Role):
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(512, gt=0)
    mode: AgentMode = "model"  # "replay": tool calls follow the blueprint (weak teachers only)
    # replay only: end the dialogue once every scripted action ran and the agent answered
    stop_after_script: bool = False

    @model_validator(mode="after")
    def _check_stop(self) -> AgentRole:
        if self.stop_after_script and self.mode != "replay":
            raise ValueError("agent.stop_after_script needs agent.mode: replay (a model agent has no script)")
        return self


class UserRole(Role):
    # "scripted": a declared stand-in that answers from its task by fixed rules, no model
    # (datagen.simulate.scripted_user; for machines without a capable model). Recorded as user_mode.
    mode: UserMode = "model"
    temperature: float = Field(1.0, ge=0.0)
    max_tokens: int = Field(200, gt=0)
    best_of_n: int = Field(4, ge=1)
    judge: str | None = Field(
        None, description="alias of the Best-of-N judge (default: the user's own model)"
    )
    judge_max_tokens: int = Field(120, gt=0)

    @model_validator(mode="after")
    def _check_scripted(self) -> UserRole:
        if self.mode == "scripted" and self.judge:
            raise ValueError(
                "user.judge needs user.mode: model (a scripted user samples no candidates to judge)"
            )
        return self

    def aliases(self) -> list[str]:
        if self.mode == "scripted":
            return []  # no model: no engine is started for it
        return [self.model] + ([self.judge] if self.judge else [])


class EpisodeConfig(Strict):
    """One dialogue's two sides and its limits; ``seed`` is the run seed every episode seed derives from."""

    agent: AgentRole = Field(default_factory=AgentRole)
    user: UserRole = Field(default_factory=UserRole)
    max_steps: int = Field(30, ge=2)
    seed: int = 0


class SimulateConfig(EpisodeConfig):
    """The `simulate:` section of a datagen recipe (Phase 2)."""

    attempts: int = Field(3, ge=1)  # per blueprint; every distinct success is kept
    concurrency: int = Field(64, ge=1)  # dialogues in flight at once
