"""Phase 2 first in `apigen-mt generate`: while accepted blueprints wait for a dialogue slot, new
Phase 1 proposals wait at the admission of the engine both phases share (the admission rules
themselves are in test_llm_admission.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from datagen.llm.admission import Admission
from datagen.llm.pool import ModelPool
from datagen.pipeline import hold_proposals_for_phase2
from datagen.recipe.datagen import load_datagen_recipe
from datagen.runner.batch import Batch, Job

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "datagen" / "demo.yaml"


def _generator() -> SimpleNamespace:
    return SimpleNamespace(generator=SimpleNamespace(admission=Admission(64)))


def test_proposals_are_held_while_phase_2_has_a_backlog_on_a_shared_engine():
    config = load_datagen_recipe(DEMO)  # one alias serves the generator, the agent and the user
    models, backlog = _generator(), [0]
    gate = models.generator.admission
    with hold_proposals_for_phase2(config, ModelPool(config.models), models, lambda: backlog[0]):
        assert not gate._holds_proposal(gate.ticket(None, max_tokens=1, n=1, priority=2))
        backlog[0] = 3
        assert gate._holds_proposal(gate.ticket(None, max_tokens=1, n=1, priority=2))
        assert not gate._holds_proposal(gate.ticket(None, max_tokens=1, n=1, priority=0))  # dialogues go on
    assert not gate._holds_proposal(gate.ticket(None, max_tokens=1, n=1, priority=2))


def test_no_hold_when_the_dialogues_run_on_an_engine_of_their_own_or_on_ray():
    config = load_datagen_recipe(DEMO)
    spec = config.models["smol"].model_dump()
    separate = load_datagen_recipe(
        DEMO,
        {
            "models.other": {**spec, "max_model_len": 4096},
            "simulate.agent.model": "other",
            "simulate.user.model": "other",
        },
    )
    for recipe, models in ((separate, _generator()), (config, None)):
        with hold_proposals_for_phase2(recipe, ModelPool(recipe.models), models, lambda: 5):
            if models is not None:
                gate = models.generator.admission
                assert not gate._holds_proposal(gate.ticket(None, max_tokens=1, n=1, priority=2))


def test_the_batch_counts_the_jobs_that_wait_for_a_slot():
    async def run() -> list[int]:
        release = asyncio.Event()
        seen: list[int] = []

        async def work(n: int) -> int:
            await release.wait()
            return n

        async with Batch(work, concurrency=2, record=lambda *_: None, record_error=lambda *_: None) as batch:
            batch.submit_all(Job(str(i), i) for i in range(5))
            await asyncio.sleep(0.01)
            seen.append(batch.counts.queued)
            release.set()
            await batch.wait()
            seen.append(batch.counts.queued)
        return seen

    assert asyncio.run(run()) == [3, 0]
