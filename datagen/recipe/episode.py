"""Episode settings: the agent's and the simulated user's roles, and Phase 2's `simulate:` section.

:class:`EpisodeConfig` is what the build layer (:mod:`datagen.simulate.build`) needs to set up one
dialogue; Phase 2 (:class:`SimulateConfig`) and the τ harness (``evaluation.tau.config.TauConfig``)
both extend it, so the two can never build their sides differently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from datagen.recipe import Role, Strict

#: how the agent acts: ``model`` chooses its tool calls; ``replay`` follows the blueprint's
AgentMode = Literal["model", "replay"]
#: how the simulated user speaks: ``model`` samples its turns; ``scripted`` answers from its task by
#: fixed rules (:mod:`datagen.simulate.scripted_user`), a declared stand-in recorded as ``user_mode``
UserMode = Literal["model", "scripted"]


class AgentRole(Role):
    """The agent: the model that serves the user with the domain's tools and policy."""

    temperature: float = Field(0.0, ge=0.0, description="sampling temperature of the agent")
    max_tokens: int = Field(512, gt=0, description="tokens the agent may write per turn")
    mode: AgentMode = Field(
        "model",
        description="model: the model chooses its tool calls; replay: tool calls follow the blueprint and "
        "the model writes the text (for teachers too weak to act; recorded in provenance)",
    )
    stop_after_script: bool = Field(
        False,
        description="replay only: end the dialogue once every scripted action ran and the agent answered",
    )

    @model_validator(mode="after")
    def _check_stop(self) -> AgentRole:
        if self.stop_after_script and self.mode != "replay":
            raise ValueError("agent.stop_after_script needs agent.mode: replay (a model agent has no script)")
        return self


class UserRole(Role):
    """The simulated human: sees the task's instruction, never the tools; ends with ``###STOP###``."""

    mode: UserMode = Field(
        "model",
        description="model: the model plays the user; scripted: a declared stand-in with no model that "
        "answers from its task's values by fixed rules (for machines without a capable user model; "
        "recorded as user_mode in trajectories, exports and cards)",
    )
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature of the simulated user")
    max_tokens: int = Field(200, gt=0, description="tokens the simulated user may write per turn")
    best_of_n: int = Field(
        4,
        ge=1,
        description="candidate user turns sampled per turn; a self-critique judge keeps the best (1: off)",
    )
    judge: str | None = Field(
        None, description="alias of the Best-of-N judge (default: the user's own model)"
    )
    judge_max_tokens: int = Field(120, gt=0, description="tokens the judge may write per scoring")

    @model_validator(mode="after")
    def _check_scripted(self) -> UserRole:
        if self.mode == "scripted" and self.judge:
            raise ValueError(
                "user.judge needs user.mode: model (a scripted user samples no candidates to judge)"
            )
        return self

    def aliases(self) -> list[str]:
        """The user's model alias, and its judge's when it has one (none for a scripted user)."""
        if self.mode == "scripted":
            return []  # no model: no engine is started for it
        return [self.model] + ([self.judge] if self.judge else [])


class EpisodeConfig(Strict):
    """One dialogue's two sides and its limits; ``seed`` is the run seed every episode seed derives from."""

    agent: AgentRole = Field(default_factory=AgentRole, description="the agent's model alias and settings")
    user: UserRole = Field(
        default_factory=UserRole, description="the simulated user's model alias and settings"
    )
    max_steps: int = Field(
        30, ge=2, description="user and agent turns before the dialogue is cut (a cut dialogue fails)"
    )
    seed: int = Field(
        0, description="run seed every dialogue's seed derives from (with the task and attempt)"
    )


class SimulateConfig(EpisodeConfig):
    """The `simulate:` section of a datagen recipe (Phase 2)."""

    attempts: int = Field(3, ge=1, description="dialogues per blueprint; every distinct success is kept")
    concurrency: int = Field(64, ge=1, description="dialogues in flight at once (per worker under Ray)")
