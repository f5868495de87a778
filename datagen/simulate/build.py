"""The build layer: the two sides of one episode from a typed config, and the one seeding rule.

Phase 2 (a blueprint's attempt) and the τ harness (a task's trial) both set up their dialogues here,
so the agent, the simulated user (Best-of-N, its self-critique judge and that judge's settings, the
user's own device tools where a domain gives them) and their seeds cannot differ between datagen
and evaluation. Nothing here runs a model; :func:`play_episode` hands the sides to the episode layer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from datagen.envs.base import Domain, Environment
from datagen.llm.admission import Priority, request_priority
from datagen.llm.types import ChatModel
from datagen.recipe.episode import EpisodeConfig, UserRole
from datagen.simulate.agent import Agent
from datagen.simulate.episode import EpisodeResult, run_episode
from datagen.simulate.scripted_user import SCRIPTED, Reveal, ScriptedUser, user_script
from datagen.simulate.user import SimulatedUser


class Models(Protocol):
    """Where the build layer gets model clients: by the alias a role names (a ``ModelPool``)."""

    def get(self, alias: str) -> ChatModel:
        """The chat model declared under ``alias`` in the recipe's ``models:``."""
        ...


def episode_seed(run_seed: int, item_id: str, attempt: int) -> int:
    """The seed of one episode: the same run seed, item and attempt give the same dialogue in every
    process and on every resume; any change of one of them gives an unrelated stream."""
    digest = hashlib.sha256(f"{run_seed}|{item_id}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class EpisodeSides:
    """The two sides of one episode and its seed, ready for :func:`play_episode`."""

    agent: Agent
    user: SimulatedUser | ScriptedUser
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
    outputs: Sequence[str] = (),
    reveal: Reveal = "actions",
) -> EpisodeSides:
    """The agent and the simulated user for attempt ``attempt`` of item ``item_id`` on ``env``.

    ``gold_actions`` (and ``outputs``) are the item's ground truth: the script of a replay agent
    (``agent.mode: replay``) and what a scripted user (``user.mode: scripted``) knows, all of its
    values (``reveal="actions"``, a blueprint) or those its instruction states (``"instruction"``,
    a gold task); ignored by model-driven sides."""
    seed = episode_seed(config.seed, item_id, attempt)
    agent_role = config.agent
    agent = Agent(
        models.get(agent_role.model),
        policy=domain.policy,
        tools=domain.tool_schemas(),
        mode=agent_role.mode,
        gold_actions=gold_actions if agent_role.mode == "replay" else None,
        stop_after_script=agent_role.stop_after_script,
        temperature=agent_role.temperature,
        max_tokens=agent_role.max_tokens,
        seed=seed,
    )
    if config.user.mode == "scripted":
        user: SimulatedUser | ScriptedUser = _scripted_user(
            domain, env, seed, instruction, gold_actions, outputs, reveal
        )
    else:
        user = _model_user(config.user, models, domain, env, seed, instruction, persona)
    return EpisodeSides(agent, user, seed)


def _model_user(
    role: UserRole,
    models: Models,
    domain: Domain,
    env: Environment,
    seed: int,
    instruction: str,
    persona: str,
) -> SimulatedUser:
    device = [tool.schema for tool in domain.user_tools]
    return SimulatedUser(
        models.get(role.model),
        instruction=instruction,
        persona=persona,
        best_of_n=role.best_of_n,
        judge=models.get(role.judge) if role.judge else None,
        temperature=role.temperature,
        max_tokens=role.max_tokens,
        judge_max_tokens=role.judge_max_tokens,
        seed=seed,
        device_tools=device or None,
        use_device=env.call_user if device else None,
    )


def _scripted_user(
    domain: Domain,
    env: Environment,
    seed: int,
    instruction: str,
    actions: list[dict[str, Any]] | None,
    outputs: Sequence[str],
    reveal: Reveal,
) -> ScriptedUser:
    if domain.user_tools:
        raise ValueError(
            f"user.mode: scripted cannot act on {domain.name}'s user side (its device tools); "
            "use user.mode: model for this domain"
        )
    if actions is None:
        raise ValueError(
            "user.mode: scripted needs the item's ground-truth actions (gold_actions) to know its task"
        )
    script = user_script(domain, env.seed, actions, instruction=instruction, outputs=outputs, reveal=reveal)
    return ScriptedUser(script, seed=seed)


def role_models(config: EpisodeConfig, models: Models) -> dict[str, str]:
    """Role -> model name, as rows record them."""
    names = {"agent": models.get(config.agent.model).name, "user": user_name(config.user, models)}
    if config.user.judge:
        names["judge"] = models.get(config.user.judge).name
    return names


def user_name(role: UserRole, models: Models) -> str:
    """The user's model name as rows record it; ``scripted`` for the scripted stand-in (no model)."""
    return SCRIPTED if role.mode == "scripted" else models.get(role.model).name


async def play_episode(config: EpisodeConfig, sides: EpisodeSides, env: Environment) -> EpisodeResult:
    """One dialogue; its requests go before new Phase 1 work (see :mod:`datagen.llm.admission`)."""
    with request_priority(Priority.DIALOGUE):
        return await run_episode(env, sides.agent, sides.user, max_steps=config.max_steps)
