"""Phase 2 configuration, loaded from the `simulate:` section of a datagen recipe."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from datagen.llm import ModelSpec
from datagen.simulate.agent import AgentMode


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelSpec
    mode: AgentMode = "model"  # "replay": tool calls follow the blueprint (weak teachers only)
    temperature: float = 0.0
    max_tokens: int = Field(512, gt=0)


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelSpec
    best_of_n: int = Field(4, ge=1)
    judge: ModelSpec | None = None  # default: the user model judges itself
    temperature: float = 1.0
    max_tokens: int = Field(200, gt=0)
    judge_max_tokens: int = Field(120, gt=0)


class SimulateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: AgentConfig
    user: UserConfig
    attempts: int = Field(3, ge=1)  # per blueprint; every distinct success is kept
    max_steps: int = Field(30, ge=2)
    concurrency: int = Field(64, ge=1)  # dialogues in flight at once
    seed: int = 0
