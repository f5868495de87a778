"""Phase 1's task lifecycle on the shop domain with scripted models: one check chain in the order of
``Stage`` for base and recombined tasks alike, the funnel and revisable stages derived from it, the
proposer factory, and per-sampler random streams (a task does not change with the few-shot pool)."""

from __future__ import annotations

import asyncio
import typing
from pathlib import Path

import pytest
from blueprint_toy import make_shop_domain, shop_responder
from scripted import ScriptedModel

from datagen.blueprint.committee import Judge
from datagen.blueprint.context import RunContext
from datagen.blueprint.funnel import Funnel
from datagen.blueprint.grounding import StatePlanner
from datagen.blueprint.lifecycle import develop_task
from datagen.blueprint.proposal import generator_system_prompt, judge_system_prompt
from datagen.blueprint.proposers import PROPOSERS, GroundedProposer, LLMProposer, build_proposer
from datagen.blueprint.recombine import recombine
from datagen.blueprint.samplers import FewshotPool, UserIndex, load_traits
from datagen.blueprint.stages import CHECKS, Stage, revisable
from datagen.envs.base import Task
from datagen.recipe.datagen import DatagenRecipe, ModelConfig, ProposalConfig
from datagen.records import Blueprint

CHECK_NAMES = [stage.value for stage in CHECKS]


def _config(**overrides) -> DatagenRecipe:
    base = {"name": "shop-test", "env": "shop", "samplers": {"records_range": [2, 4]}}
    return DatagenRecipe.model_validate(base | overrides)


def _context(domain, config: DatagenRecipe, pool: FewshotPool | None = None) -> RunContext:
    model = ScriptedModel(shop_responder())
    users = UserIndex(domain.new_env(0), config.samplers.user_table)
    return RunContext(
        config=config,
        domain=domain,
        generator=model,
        judges=[Judge(f"j{i}", model, ModelConfig()) for i in range(3)],
        generator_system=generator_system_prompt(domain),
        judge_system=judge_system_prompt(domain),
        pool=pool if pool is not None else FewshotPool([], 0),
        traits=load_traits(),
        db_seed=0,
        users=users,
        planner=StatePlanner(domain, users, 0),
    )


def _parent(number: int, action: str, order_id: str, outputs: list[str], **arguments) -> Blueprint:
    return Blueprint(
        id=f"bp{number}",
        env="shop",
        seed=0,
        user_id="u0",
        persona="User 0",
        instruction=f"{action} {order_id}",
        actions=[{"name": action, "arguments": {"order_id": order_id, **arguments}}],
        outputs=outputs,
        provenance={"kind": "base", "sampler": {"records": ["users/u0", f"orders/{order_id}"]}},
    )


def test_stages_are_one_list_in_the_papers_order():
    assert CHECK_NAMES == ["format", "execution", "outputs", "policy", "duplicate", "committee"]
    assert Stage.PROPOSAL not in CHECKS
    # grounded proposals fix the actions: only text failures can be revised
    assert {s.value for s in CHECKS if revisable(s, fixed_actions=True)} == {"format", "outputs", "committee"}
    assert all(revisable(s, fixed_actions=False) for s in CHECKS)
    assert not revisable(Stage.PROPOSAL, fixed_actions=False) and not revisable(None, fixed_actions=False)
    assert list(Funnel().as_dict()["passed"]) == CHECK_NAMES
    assert list(Funnel().as_dict()["recombined"]["passed"]) == CHECK_NAMES


@pytest.mark.parametrize("proposal", ["llm", "grounded"])
def test_an_accepted_base_task_passed_every_stage_in_order(tmp_path: Path, proposal: str):
    domain = make_shop_domain(tmp_path)
    ctx = _context(domain, _config(proposal={"type": proposal}, samplers={"walk_length": [1, 1]}))
    outcomes = [asyncio.run(develop_task(ctx, i)) for i in range(4)]
    accepted = [o for o in outcomes if o.blueprint is not None]
    assert accepted, [(o.stage, o.reasons) for o in outcomes]
    for outcome in accepted:
        assert outcome.attempts[-1].passed == CHECK_NAMES
        assert outcome.blueprint.provenance["proposal"] == proposal


def test_recombination_runs_every_stage_it_reports(tmp_path: Path):
    """The combined task's outputs are checked against the parents' data and the combination's
    results; before, recombination marked "outputs" passed without running it."""
    domain = make_shop_domain(tmp_path)
    ctx = _context(domain, _config(proposal={"type": "grounded"}))
    cancel = ("cancel_order", "o00", {"reason": "ordered by mistake"})
    good = [
        _parent(0, cancel[0], cancel[1], ["cancelled"], **cancel[2]),
        _parent(1, "return_order", "o01", ["returned"]),
    ]
    outcome = asyncio.run(recombine(ctx, good))
    assert outcome.blueprint is not None, (outcome.stage, outcome.reasons)
    assert outcome.attempts[0].passed == CHECK_NAMES
    made_up = [_parent(2, cancel[0], "o02", ["a made-up confirmation code"], **cancel[2]), good[1]]
    outcome = asyncio.run(recombine(ctx, made_up))
    assert outcome.stage == "outputs" and "made-up confirmation code" in outcome.reasons[0]
    assert outcome.attempts[0].passed == ["format", "execution"]


def test_the_proposer_factory_covers_every_proposal_type():
    (union,) = typing.get_args(ProposalConfig)[:1]
    configs = typing.get_args(union)
    assert {c.model_fields["type"].default for c in configs} == set(PROPOSERS)
    kinds = {c.model_fields["type"].default: type(build_proposer(c())) for c in configs}
    assert kinds == {"llm": LLMProposer, "grounded": GroundedProposer}


def _fewshot_pool(size: int) -> FewshotPool:
    examples = [
        Task(id=f"ex{i}", persona="p", instruction=f"Example {i}.", actions=[], outputs=[])
        for i in range(size)
    ]
    return FewshotPool(examples, max(size, 1))


@pytest.mark.parametrize("proposal", ["grounded", "llm"])
def test_a_task_draws_the_same_whatever_the_fewshot_pool_holds(tmp_path: Path, proposal: str):
    """A resumed or re-run task meets a different accepted pool; only its few-shot examples may
    differ. Before, the few-shot draw shared the task's generator with grounding and the request
    seeds, so with pools of 1 and 9 examples 5 of these 12 grounded tasks and 6 of the llm ones
    drew other arguments or request seeds."""
    domain = make_shop_domain(tmp_path)
    config = _config(
        proposal={"type": proposal},
        samplers={"walk_length": [1, 2], "fewshot_range": [1, 3]},
        request_seeds=True,
    )

    def run(pool_size: int) -> list[tuple]:
        ctx = _context(domain, config, _fewshot_pool(pool_size))
        found = []
        for index in range(12):
            outcome = asyncio.run(develop_task(ctx, index))
            sampler = {k: v for k, v in outcome.provenance["sampler"].items() if k != "fewshot"}
            actions = (
                [a.model_dump() for a in outcome.blueprint.actions] if outcome.blueprint else outcome.draft
            )
            seeds = [request["seed"] for request in ctx.generator.requests]
            ctx.generator.requests.clear()
            found.append((sampler, actions, outcome.stage, seeds))
        return found

    assert run(1) == run(9)
