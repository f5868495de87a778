"""The demo's verified dialogues pass the provenance check: Phase 1's grounded drafts of each CPU demo
recipe (the walk alone; no model writes the instruction, so it names no value), kept when they pass
the execution and policy stages, played as the recipe plays them (replay agent, stop_after_script,
scripted user) and judged as Phase 2 judges them. A control where the user says no value shows the
check would catch it."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from scripted import ScriptedModel

from datagen.blueprint.proposers import build_proposer
from datagen.blueprint.runner import build_context
from datagen.blueprint.samplers import TaskStreams
from datagen.blueprint.validators import validate_execution, validate_policy
from datagen.envs.base import ToolCallModel
from datagen.envs.registry import get_domain
from datagen.recipe.datagen import load_datagen_recipe
from datagen.simulate import scripted_user
from datagen.simulate.build import build_sides, play_episode
from datagen.simulate.verdict import gold_hash, judge_episode

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "datagen"
DRAFTS = 6
AGENT_LINES = [
    "Sure, I can help with that.",
    "Could you please confirm you want to proceed? (yes/no)",
    "Which order is it?",
    "Done. Anything else?",
    "Please verify your identity: what is your email?",
    "What would you like to do next?",
]


class Models:
    """The agent's text around its replayed calls: one of AGENT_LINES (the 135M model's part)."""

    def get(self, alias):
        return ScriptedModel(lambda m, k: [random.Random(len(m)).choice(AGENT_LINES)], name="stub")


def _demo_failures(recipe: str) -> tuple[int, list[str | None]]:
    """(drafts that passed the policy stage, the failure class of each of their dialogues)."""
    config = load_datagen_recipe(RECIPES / recipe)
    domain = get_domain(config.env)
    ctx = build_context(config, domain, SimpleNamespace(generator=None, judges=[]), [], 0)
    proposer, sim = build_proposer(config.proposal), config.simulate
    kept, failures = 0, []
    for index in range(DRAFTS):
        actions = getattr(
            proposer.propose(ctx, index, TaskStreams.for_task(config.seed, str(index))), "actions", None
        )
        calls = [ToolCallModel.model_validate(a) for a in actions or []]
        execution = validate_execution(calls, domain, ctx.db_seed) if calls else None
        if execution is None or not execution.ok or not validate_policy(execution).ok:
            continue
        kept += 1
        for attempt in range(sim.attempts):
            env = domain.new_env(ctx.db_seed)
            sides = build_sides(
                sim, Models(), domain, env, item_id=f"bp{index}", attempt=attempt,
                instruction="You want help with your account.", persona="", gold_actions=actions, outputs=[],
            )  # fmt: skip
            episode = asyncio.run(play_episode(sim, sides, env))
            verdict = judge_episode(
                env, episode, expected_hash=gold_hash(domain, ctx.db_seed, calls)[0], expected_outputs=[],
                provenance=True,
            )  # fmt: skip
            failures.append(verdict.failure)
    return kept, failures


@pytest.mark.parametrize("recipe", ["demo.yaml", "demo-airline.yaml", "demo-bank.yaml"])
def test_the_demo_recipes_dialogues_pass_every_check_provenance_included(recipe):
    kept, failures = _demo_failures(recipe)
    assert kept >= DRAFTS // 2 and failures and all(f is None for f in failures), (kept, failures)


def test_a_user_who_says_no_value_fails_the_provenance_check(monkeypatch):
    monkeypatch.setattr(scripted_user.ScriptedUser, "_say", lambda self, facts: [])
    _, failures = _demo_failures("demo.yaml")
    assert failures and set(failures) == {"ungrounded_arguments"}
