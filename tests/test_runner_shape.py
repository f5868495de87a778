"""The concurrency shape of a datagen run: the recipe's ceilings, lowered to the jobs whose working
sets the engine's KV cache holds at once."""

from __future__ import annotations

from pathlib import Path

from datagen.llm.admission import Admission, EngineLimits
from datagen.pipeline_shape import dialogue_tokens, plan_shape, run_shape, task_tokens
from datagen.recipe.datagen import load_datagen_recipe

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "datagen" / "demo.yaml"


def test_the_kv_cache_bounds_jobs_in_flight_below_the_ceilings():
    limits = EngineLimits(step_tokens=8192, kv_tokens=100_000, max_seqs=256)
    shape = plan_shape(256, 256, limits, phase1_tokens=1_000, phase2_tokens=4_000)
    assert (shape.phase1, shape.phase2) == (100, 25)
    assert plan_shape(8, 64, limits, 1_000, 4_000).phase1 == 8  # the ceiling wins when it is lower
    assert plan_shape(8, 64, EngineLimits(8192, 100, 4), 1_000, 4_000).phase2 == 1  # never none
    assert "KV holds 100" in shape.describe(256, 256)


def test_without_engine_limits_the_recipe_ceilings_stand():
    config = load_datagen_recipe(DEMO)
    phase2 = config.phase2()
    shape = run_shape(config, phase2, generator=object(), agent=None)  # a server, or models on Ray
    assert (shape.phase1, shape.phase2) == (config.concurrency, phase2.concurrency)
    assert "ceilings" in shape.describe(config.concurrency, phase2.concurrency)


def test_a_larger_engine_raises_the_shape_up_to_the_ceilings():
    config = load_datagen_recipe(DEMO, {"concurrency": 256, "simulate.concurrency": 256})
    phase2 = config.phase2()

    class Model:
        def __init__(self, kv_tokens: int) -> None:
            self.admission = Admission(256, EngineLimits(8192, kv_tokens, 256))

    small = run_shape(config, phase2, Model(96_256), Model(96_256))
    large = run_shape(config, phase2, Model(2_000_000), Model(2_000_000))  # a GPU's KV cache
    assert small.phase1 == 96_256 // task_tokens(config) and small.phase2 == 96_256 // dialogue_tokens(phase2)
    assert (large.phase1, large.phase2) == (256, 256)


def test_an_engine_that_prefills_whole_prompts_keeps_only_the_tasks_its_prefill_budget_holds():
    from datagen.pipeline_shape import task_prefill_tokens

    config = load_datagen_recipe(DEMO, {"concurrency": 256, "simulate.concurrency": 256})
    widest = task_prefill_tokens(config)  # three committee seats, each the context and the draft
    assert widest == 3 * (config.samplers.max_context_chars // 3 + config.generator.max_tokens)
    whole = EngineLimits(8192, 150_000, 128, whole_prefill=True)
    shape = plan_shape(256, 256, whole, task_tokens(config), dialogue_tokens(config.phase2()), widest)
    assert shape.phase1 == shape.prefill_tasks == 2 * 8192 // widest  # the budget is two steps
    assert shape.phase2 == 150_000 // dialogue_tokens(config.phase2())  # dialogues are not bounded by it
    assert f"prefill budget holds {shape.prefill_tasks}" in shape.describe(256, 256)
    chunked = EngineLimits(8192, 150_000, 128)  # a prompt's share is released at its first token
    assert plan_shape(256, 256, chunked, task_tokens(config), 2_800, widest).phase1 == 150_000 // task_tokens(
        config
    )
    assert plan_shape(4, 256, whole, task_tokens(config), 2_800, widest).phase1 == 4  # the ceiling when lower
