"""The two sides of an episode, built the way Phase 2 and the τ harness build theirs.

This is the interface of the runner core's build layer (``datagen.runner.build``: ``EpisodeConfig``,
``build_sides(config, models, domain, env, item_id=, attempt=, instruction=, persona=)``, the one
seeding rule, ``play_episode``), which is still on its way to ``main``. Until it lands this module
holds the same interface over ``datagen.simulate``'s agent and user; once it has, the whole body of
this module becomes::

    from datagen.runner.build import EpisodeSides, build_sides, play_episode  # noqa: F401
    from datagen.simulate.config import EpisodeConfig  # noqa: F401

and nothing that imports from here changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from datagen.envs.base import Domain, Environment
from datagen.llm.config import EMBEDDED
from datagen.llm.types import ChatModel
from datagen.simulate.agent import Agent
from datagen.simulate.episode import EpisodeResult, run_episode
from datagen.simulate.user import SimulatedUser


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentRole(_Strict):
    model: str = Field(EMBEDDED, description="a model alias")
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(512, gt=0)


class UserRole(_Strict):
    model: str = Field(EMBEDDED, description="a model alias")
    temperature: float = Field(1.0, ge=0.0)
    max_tokens: int = Field(200, gt=0)
    best_of_n: int = Field(4, ge=1)
    judge: str | None = Field(
        None, description="alias of the Best-of-N judge (default: the user's own model)"
    )
    judge_max_tokens: int = Field(120, gt=0)

    def aliases(self) -> list[str]:
        return [self.model] + ([self.judge] if self.judge else [])


class EpisodeConfig(_Strict):
    """One dialogue's two sides and its limits; ``seed`` is the run seed every episode seed derives from."""

    agent: AgentRole = Field(default_factory=AgentRole)
    user: UserRole = Field(default_factory=UserRole)
    max_steps: int = Field(30, ge=2)
    seed: int = 0


class Models(Protocol):
    def get(self, alias: str) -> ChatModel: ...


def episode_seed(run_seed: int, item_id: str, attempt: int) -> int:
    """The seed of one episode (Phase 2's rule): the same run seed, item and attempt give the same
    stream in every process; any change of one of them gives an unrelated one."""
    digest = hashlib.sha256(f"{run_seed}|{item_id}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class EpisodeSides:
    agent: Agent
    user: SimulatedUser
    seed: int


def build_sides(
    config: EpisodeConfig,
    models: Models,
    domain: Domain,
    env: Environment,
    *,
    item_id: str,
    attempt: int,
    instruction: str,
    persona: str,
    gold_actions: list[dict[str, Any]] | None = None,
) -> EpisodeSides:
    """The agent and the simulated user for attempt ``attempt`` of item ``item_id`` on ``env``."""
    seed = episode_seed(config.seed, item_id, attempt)
    agent = Agent(
        models.get(config.agent.model),
        policy=domain.policy,
        tools=domain.tool_schemas(),
        temperature=config.agent.temperature,
        max_tokens=config.agent.max_tokens,
        seed=seed,
    )
    device = [tool.schema for tool in domain.user_tools]
    user = SimulatedUser(
        models.get(config.user.model),
        instruction=instruction,
        persona=persona,
        best_of_n=config.user.best_of_n,
        judge=models.get(config.user.judge) if config.user.judge else None,
        temperature=config.user.temperature,
        max_tokens=config.user.max_tokens,
        judge_max_tokens=config.user.judge_max_tokens,
        seed=seed,
        device_tools=device or None,
        use_device=env.call_user if device else None,  # type: ignore[attr-defined]
    )
    return EpisodeSides(agent, user, seed)


async def play_episode(config: EpisodeConfig, sides: EpisodeSides, env: Environment) -> EpisodeResult:
    return await run_episode(env, sides.agent, sides.user, max_steps=config.max_steps)
