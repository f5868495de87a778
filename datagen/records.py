"""Records that cross part boundaries: blueprints (Phase 1 -> Phase 2) and trajectories (Phase 2 -> export,
evaluation). Stored as one JSON object per line in a run directory."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apigen_rules.messages import messages_problem
from datagen.envs.base import ToolCallModel
from datagen.recipe.episode import AgentMode, UserMode


class Blueprint(BaseModel):
    """A verified task: persona, instruction q, ground-truth actions a_gt, expected outputs o_gt."""

    model_config = ConfigDict(extra="forbid")
    id: str
    env: str
    seed: int  # database seed the actions run on
    user_id: str | None = None
    persona: str
    instruction: str
    actions: list[ToolCallModel]
    outputs: list[str] = Field(default_factory=list)
    # sampler draws, generator model, proposal mode, every review score, refinement round,
    # recombination parents, the diff patch of the replay
    provenance: dict[str, Any] = Field(default_factory=dict)


FailureKind = Literal[
    "state_mismatch",
    "missing_output",
    "policy_violation",
    "ungrounded_arguments",  # passed every other check; a write call used a value nobody said
    "step_limit",
    "format_error",
    "user_error",
    "error",
]


class Trajectory(BaseModel):
    """One simulated dialogue and its verdict."""

    model_config = ConfigDict(extra="forbid")
    id: str
    blueprint_id: str
    env: str
    seed: int
    attempt: int = 0
    persona: str = ""
    instruction: str = ""
    messages: list[dict[str, Any]]  # OpenAI chat format incl. system, tool_calls and tool messages
    tools: list[dict[str, Any]]  # OpenAI function-tool schemas
    success: bool
    reward: float
    failure: FailureKind | None = None
    checks: dict[str, Any] = Field(default_factory=dict)  # state_match, missing_outputs, violations, ...
    models: dict[str, str] = Field(default_factory=dict)  # role -> model name (agent, user, judge)
    agent_mode: AgentMode = "model"
    user_mode: UserMode = "model"  # scripted: the rule-based stand-in user
    usage: dict[str, int] = Field(default_factory=dict)  # prompt_tokens, completion_tokens

    @field_validator("messages")
    @classmethod
    def _chat_messages(cls, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Every reader (export, figures, viewer, next-action) relies on the shape; a damaged record is
        # refused here, so the run readers skip it with its file and line.
        problem = messages_problem(messages)
        if problem:
            raise ValueError(problem)
        return messages
