"""Phase 2 configuration, loaded from the `simulate:` section of a datagen recipe."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.llm import ModelSpec
from datagen.simulate.agent import AgentMode


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # values may be credentials

    @model_validator(mode="after")
    def _check_stop(self) -> AgentConfig:
        if self.stop_after_script and self.mode != "replay":
            raise ValueError("agent.stop_after_script needs agent.mode: replay (a model agent has no script)")
        return self

    model: ModelSpec
    mode: AgentMode = "model"  # "replay": tool calls follow the blueprint (weak teachers only)
    # replay only: end the dialogue once every scripted action ran and the agent answered
    stop_after_script: bool = False
    temperature: float = 0.0
    max_tokens: int = Field(512, gt=0)


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # values may be credentials
    model: ModelSpec
    best_of_n: int = Field(4, ge=1)
    judge: ModelSpec | None = None  # default: the user model judges itself
    temperature: float = 1.0
    max_tokens: int = Field(200, gt=0)
    judge_max_tokens: int = Field(120, gt=0)


class SimulateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # values may be credentials
    agent: AgentConfig
    user: UserConfig
    attempts: int = Field(3, ge=1)  # per blueprint; every distinct success is kept
    max_steps: int = Field(30, ge=2)
    concurrency: int = Field(64, ge=1)  # dialogues in flight at once
    seed: int = 0
