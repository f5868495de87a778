"""τ-bench-style evaluation settings (built from the command line or a recipe)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.simulate.config import AgentConfig, UserConfig


class TauConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # values may be credentials
    agent: AgentConfig
    user: UserConfig  # a fixed, named model; Best-of-N off (1) unless asked for
    trials: int = Field(4, ge=1)
    concurrency: int = Field(64, ge=1)
    max_steps: int = Field(30, ge=2)
    seed: int = 0

    @model_validator(mode="after")
    def _agent_is_under_test(self) -> TauConfig:
        if self.agent.mode != "model":
            raise ValueError(
                "the agent under test must act on its own (agent.mode: model); replay is for data generation"
            )
        return self
