"""Task blueprints for the GRPO tests: the gold tasks of the scaffolded `library` user domain (small
enough for a 135M model's context on a CPU), a run directory holding them, and a rollout over them
whose simulated user is scripted (for tests about the reward and the transcript, not a user model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripted import ScriptedModel

from datagen.envs.registry import get_domain
from datagen.envs.scaffold import scaffold_domain
from datagen.llm.config import ModelSpec
from datagen.records import Blueprint
from datagen.rundir import DatagenRun
from training.rl.rollout import POLICY, EpisodeRollout
from training.rl.sides import AgentRole, EpisodeConfig, UserRole

STOP_LINE = "Thanks, that is all. ###STOP###"
OPENING = "I need help with my library account."


def library_blueprints(parent: Path) -> tuple[Any, list[Blueprint]]:
    folder = scaffold_domain("library", parent)
    domain = get_domain(str(folder))
    blueprints = [
        Blueprint(
            id=task.id,
            env=str(folder),  # a user domain is found by its folder
            seed=domain.eval_seed,
            persona=task.persona,
            instruction=task.instruction,
            actions=task.actions,
            outputs=task.outputs,
        )
        for task in domain.gold_tasks
    ]
    return domain, blueprints


def write_library_run(root: Path) -> Path:
    """A run directory whose blueprints are the library domain's gold tasks."""
    _, blueprints = library_blueprints(root / "domains")
    run = DatagenRun(root / "run")
    run.root.mkdir(parents=True)
    run.blueprints.write_text("".join(b.model_dump_json() + "\n" for b in blueprints))
    return run.root


class ScriptedUserPool:
    """The pool the rollout builds the user from: every alias is one scripted customer."""

    def __init__(self, opening: str, stops: bool = True) -> None:
        def customer(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> list[str]:
            own = [m for m in messages if m["role"] == "assistant"]  # the customer's earlier messages
            later = STOP_LINE if stops else "Could you say more?"
            return [opening if not own else later] * kwargs.get("n", 1)

        self.model = ScriptedModel(customer, "scripted-user")

    def get(self, spec: ModelSpec) -> ScriptedModel:
        return self.model

    async def aclose(self) -> None:
        pass


def scripted_rollout(
    blueprints: list[Blueprint],
    tokenizer: Any,
    *,
    opening: str = OPENING,
    user_stops: bool = True,
    max_completion_length: int = 4096,
    turn_tokens: int = 256,
    generation: Any = None,
    logprob_mask: Any = None,
) -> EpisodeRollout:
    """A rollout over ``blueprints`` whose simulated user is scripted: it says ``opening``, then stops
    once the agent has answered (or keeps asking, ``user_stops=False``)."""
    episode = EpisodeConfig(
        agent=AgentRole(model=POLICY, temperature=1.0, max_tokens=turn_tokens),
        user=UserRole(model="customer", best_of_n=1),
        max_steps=12,
    )
    rollout = EpisodeRollout(
        blueprints,
        episode,
        {"customer": ModelSpec(model="scripted")},
        tokenizer=tokenizer,
        tool_format="hermes",
        max_completion_length=max_completion_length,
        generation=generation,
        logprob_mask=logprob_mask,
    )
    rollout._pool = ScriptedUserPool(opening, user_stops)
    return rollout
