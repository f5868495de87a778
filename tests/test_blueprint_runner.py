"""Phase 1 runner on the shop domain with scripted models: funnel, refinement, recombination,
malformed output, append-only records, and resume after SIGKILL (real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from blueprint_toy import make_shop_domain, shop_responder
from scripted import ScriptedModel

from apigen_rules.jsonl import read_jsonl
from datagen.blueprint.committee import Judge
from datagen.blueprint.context import RunContext
from datagen.blueprint.proposal import ModelCallError, generator_system_prompt, judge_system_prompt
from datagen.blueprint.recombine import recombine
from datagen.blueprint.runner import Models, read_run, run_blueprints
from datagen.blueprint.samplers import FewshotPool, UserIndex, load_traits
from datagen.blueprint.validators import validate_execution, validate_policy
from datagen.recipe.datagen import DatagenRecipe, ModelConfig, load_datagen_recipe
from datagen.records import Blueprint
from datagen.rundir import DatagenRun

TESTS = Path(__file__).parent


def _models(respond) -> Models:
    model = ScriptedModel(respond)
    return Models(model, [Judge(f"j{i}", model, ModelConfig()) for i in range(3)])


def _config(**overrides) -> DatagenRecipe:
    base = {
        "name": "shop-test",
        "env": "shop",
        "num_tasks": 8,
        "concurrency": 3,
        "samplers": {"records_range": [2, 4]},
        "refinement": {"max_rounds": 2},
    }
    return DatagenRecipe.model_validate(base | overrides)


def _run(config, run_dir, domain, respond, **kwargs):
    return asyncio.run(run_blueprints(config, run_dir, domain=domain, models=_models(respond), **kwargs))


def test_funnel_adds_up_and_accepted_blueprints_replay(tmp_path):
    domain = make_shop_domain(tmp_path)
    funnel = _run(_config(proposal={"type": "llm"}), tmp_path / "run", domain, shop_responder()).as_dict()
    accepted = [json.loads(line) for line in DatagenRun(tmp_path / "run").blueprints.read_text().splitlines()]
    rejected, _ = read_jsonl(DatagenRun(tmp_path / "run").rejections)
    assert funnel["proposed"] == 8 == len(accepted) + len(rejected)
    assert funnel["accepted"] == len(accepted) > 0
    assert (
        funnel["passed"]["format"]
        >= funnel["passed"]["execution"]
        >= funnel["passed"]["policy"]
        >= funnel["passed"]["committee"]
    )
    assert sum(funnel["accepted_per_round"].values()) == funnel["accepted"]
    assert sum(funnel["rejected_by_stage"].values()) == len(rejected)
    assert funnel["tokens_per_accepted"] > 0
    assert json.loads(DatagenRun(tmp_path / "run").phase1_stats.read_text()) == funnel
    assert DatagenRun(tmp_path / "run").recipe.exists()
    for row in accepted:
        execution = validate_execution(_actions(row), domain, row["seed"])
        assert execution.ok and validate_policy(execution).ok
        assert execution.data["diff"] == row["provenance"]["diff"]
        assert row["provenance"]["sampler"]["user_id"] == row["user_id"]
        assert row["provenance"]["reviews"][-1]["ok"] and row["provenance"]["reviews"][-1]["average"] == 1.0
    for row in rejected:
        assert row["stage"] in {"duplicate", "execution", "policy", "format", "committee"} and row["reasons"]


def _actions(row):
    from datagen.envs.base import ToolCallModel

    return [ToolCallModel.model_validate(a) for a in row["actions"]]


def test_broken_first_drafts_are_format_rejections_then_refined(tmp_path):
    domain = make_shop_domain(tmp_path)
    funnel = _run(
        _config(num_tasks=4), tmp_path / "run", domain, shop_responder(bad_first_draft=True)
    ).as_dict()
    assert funnel["accepted_per_round"].get("0", 0) == 0
    assert funnel["accepted_per_round"].get("1", 0) == funnel["accepted"] > 0
    assert funnel["drafts"] >= 2 * funnel["proposed"]
    assert (
        funnel["passed"]["format"] == funnel["drafts"] - funnel["proposed"]
    )  # every first draft failed format
    accepted, _ = read_jsonl(DatagenRun(tmp_path / "run").blueprints)
    assert all(row["provenance"]["round"] == 1 for row in accepted)


def test_committee_threshold_rejects_after_bounded_rounds(tmp_path):
    domain = make_shop_domain(tmp_path)
    config = _config(num_tasks=3, committee={"threshold": 0.75}, refinement={"max_rounds": 1})
    funnel = _run(config, tmp_path / "run", domain, shop_responder(judge_scores=(1, 1, 0, 0))).as_dict()
    assert funnel["accepted"] == 0
    assert funnel["rejected_by_stage"] == {"committee": 3}
    assert funnel["drafts"] == 6  # first draft + one revision each
    rejected, _ = read_jsonl(DatagenRun(tmp_path / "run").rejections)
    assert all(len(r["provenance"]["reviews"]) == 2 for r in rejected)


def test_grounded_proposal_and_recombination(tmp_path):
    domain = make_shop_domain(tmp_path)
    config = _config(
        num_tasks=12,
        proposal={"type": "grounded"},
        samplers={"walk_length": [1, 1]},
        recombination={"share": 1.0, "group_size": [2, 2]},
    )
    funnel = _run(config, tmp_path / "run", domain, shop_responder()).as_dict()
    accepted, _ = read_jsonl(DatagenRun(tmp_path / "run").blueprints)
    base = [b for b in accepted if b["provenance"]["kind"] == "base"]
    recombined = [b for b in accepted if b["provenance"]["kind"] == "recombined"]
    assert all(b["provenance"]["proposal"] == "grounded" for b in base)
    assert funnel["recombined"]["proposed"] >= 1
    assert funnel["recombined"]["accepted"] == len(recombined)
    by_id = {b["id"]: b for b in base}
    for r in recombined:
        parents = [by_id[p] for p in r["provenance"]["parents"]]
        assert len(parents) == 2 and len({p["user_id"] for p in parents}) == 1
        assert r["actions"] == [a for p in parents for a in p["actions"]]
        assert r["outputs"] == list(dict.fromkeys(o for p in parents for o in p["outputs"]))
        assert r["outputs"] and r["instruction"].startswith("You want all these changes made (")
        execution = validate_execution(_actions(r), domain, r["seed"])
        assert execution.ok and validate_policy(execution).ok


def test_grounded_outputs_must_come_from_the_data_and_can_be_revised(tmp_path):
    domain = make_shop_domain(tmp_path)
    config = _config(num_tasks=4, proposal={"type": "grounded"}, samplers={"walk_length": [1, 1]})
    funnel = _run(config, tmp_path / "run", domain, shop_responder(bad_first_draft=True)).as_dict()
    accepted, _ = read_jsonl(DatagenRun(tmp_path / "run").blueprints)
    assert funnel["accepted"] == len(accepted) > 0 and funnel["accepted_per_round"] == {"1": len(accepted)}
    for row in accepted:
        first, second = row["provenance"]["funnel"]["attempts"]
        assert first["failed_stage"] == "outputs" and "made-up confirmation code" in first["reasons"][0]
        assert second["passed"][:3] == ["format", "execution", "outputs"]
        assert row["outputs"][0] in json.dumps(row["provenance"]["diff"]) + json.dumps(row["actions"])


def test_grounded_without_outputs_asks_only_for_the_instruction_and_keeps_o_gt_empty(tmp_path):
    domain = make_shop_domain(tmp_path)
    prompts = []

    def respond(messages, kwargs):
        prompts.append((messages, kwargs))
        return shop_responder(bad_first_draft=True)(messages, kwargs)  # its outputs would be rejected

    config = _config(
        num_tasks=3, proposal={"type": "grounded", "outputs": False}, committee={"enabled": False}
    )
    funnel = _run(config, tmp_path / "run", domain, respond).as_dict()
    accepted, _ = read_jsonl(DatagenRun(tmp_path / "run").blueprints)
    assert funnel["accepted"] == len(accepted) == 3 and funnel["accepted_per_round"] == {"0": 3}
    assert all(row["outputs"] == [] and row["provenance"]["outputs"] == "none" for row in accepted)
    drafts = [(m, k) for m, k in prompts if "The ground-truth actions are fixed" in m[-1]["content"]]
    assert drafts and all('"outputs"' not in m[-1]["content"] for m, _ in drafts)
    assert all("outputs" not in k["json_schema"]["properties"] for _, k in drafts)


def test_garbage_output_is_a_format_rejection_never_a_crash(tmp_path):
    domain = make_shop_domain(tmp_path)
    funnel = _run(
        _config(num_tasks=3, refinement={"max_rounds": 1}),
        tmp_path / "run",
        domain,
        lambda messages, kwargs: ["\x00 not json at all {{{"],
    ).as_dict()
    assert funnel["proposed"] == 3 and funnel["accepted"] == 0 and funnel["drafts"] == 6
    assert funnel["rejected_by_stage"] == {"format": 3}


def test_a_dead_model_stops_the_run_without_marking_tasks_done(tmp_path):
    domain = make_shop_domain(tmp_path)
    config = _config(num_tasks=4, concurrency=2)

    def dead_judges(messages, kwargs):
        if messages[0]["content"].startswith("You review"):
            raise ConnectionError("judge server went away")
        return shop_responder()(messages, kwargs)

    with pytest.raises(ModelCallError, match="judge server went away"):
        _run(config, tmp_path / "run", domain, dead_judges)
    assert read_run(tmp_path / "run").done == set()
    funnel = _run(config, tmp_path / "run", domain, shop_responder(), resume=True).as_dict()
    assert funnel["proposed"] == 4 and funnel["accepted"] > 0


def test_existing_run_needs_resume_and_resume_skips_done_tasks(tmp_path):
    domain = make_shop_domain(tmp_path)
    config = _config(num_tasks=3)
    _run(config, tmp_path / "run", domain, shop_responder())
    with pytest.raises(FileExistsError):
        _run(config, tmp_path / "run", domain, shop_responder())
    calls = []

    def counting(messages, kwargs):
        calls.append(1)
        return shop_responder()(messages, kwargs)

    more = config.model_copy(update={"num_tasks": 5})
    funnel = _run(more, tmp_path / "run", domain, counting, resume=True).as_dict()
    assert funnel["proposed"] == 5
    assert calls  # only the two new tasks ran
    assert len(read_run(tmp_path / "run").done) == 5


RESUME_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from blueprint_toy import make_shop_domain, shop_responder
    from scripted import ScriptedModel
    from datagen.blueprint.committee import Judge
    from datagen.recipe.datagen import DatagenRecipe, ModelConfig
    from datagen.blueprint.runner import Models, run_blueprints

    class SlowModel(ScriptedModel):
        async def chat(self, messages, **kwargs):
            await asyncio.sleep(0.05)
            return await super().chat(messages, **kwargs)

    model = SlowModel(shop_responder())
    models = Models(model, [Judge(f"j{{i}}", model, ModelConfig()) for i in range(3)])
    config = DatagenRecipe.model_validate({config!r})
    run_dir = Path(sys.argv[1])
    asyncio.run(run_blueprints(config, run_dir, resume=True, domain=make_shop_domain(run_dir.parent), models=models))
""")


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    config = {
        "name": "kill",
        "env": "shop",
        "num_tasks": 40,
        "concurrency": 4,
        "samplers": {"records_range": [2, 4]},
    }
    script = tmp_path / "phase1.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(TESTS), config=config))
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)], env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        rows, _ = read_jsonl(DatagenRun(run_dir).blueprints)
        if len(rows) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before, _ = read_jsonl(DatagenRun(run_dir).blueprints)
    assert len(before) >= 3 and len(read_run(run_dir).done) < 40, "the run must be killed mid-way"
    with DatagenRun(run_dir).blueprints.open("a") as fh:
        fh.write('{"id": "kill-00099", "env": "sh')  # a torn last line, as a kill mid-write leaves
    subprocess.run([sys.executable, str(script), str(run_dir)], env=env, check=True, timeout=120)
    after, problems = read_jsonl(DatagenRun(run_dir).blueprints)
    rejected, _ = read_jsonl(DatagenRun(run_dir).rejections)
    assert problems == []
    ids = [r["id"] for r in after]
    assert len(ids) == len(set(ids))
    assert [r["id"] for r in before] == ids[: len(before)]
    assert set(ids) | {r["task_id"] for r in rejected} == {f"kill-{i:05d}" for i in range(40)}
    stats = json.loads(DatagenRun(run_dir).phase1_stats.read_text())
    assert stats["proposed"] == 40 and stats["accepted"] == len(ids)


PHASE1_RECIPES = ("demo", "retail", "airline", "bank", "tau2-retail", "tau2-airline", "tau2-telecom")


def test_recipes_parse():
    for name in PHASE1_RECIPES:
        path = TESTS.parent / "recipes" / "datagen" / f"{name}.yaml"
        config = load_datagen_recipe(path)
        assert config.name and config.env
        assert path.read_text().startswith("#"), f"{path} must start with the command that runs it"


def test_switched_off_checks_count_as_passed_so_the_funnel_is_monotone(tmp_path):
    domain = make_shop_domain(tmp_path)
    config = _config(num_tasks=4, committee={"enabled": False}, grounded_outputs=False)
    funnel = _run(config, tmp_path / "run", domain, shop_responder()).as_dict()
    counts = list(funnel["passed"].values())
    assert counts == sorted(counts, reverse=True) and counts[-1] >= funnel["accepted"] > 0


def _recombination_context(domain, config) -> RunContext:
    from datagen.blueprint.grounding import StatePlanner

    models = _models(shop_responder())
    users = UserIndex(domain.new_env(0), config.samplers.user_table)
    return RunContext(
        config=config, domain=domain, generator=models.generator, judges=models.judges,
        generator_system=generator_system_prompt(domain), judge_system=judge_system_prompt(domain),
        pool=FewshotPool(domain.example_tasks, 4), traits=load_traits(), db_seed=0,
        users=users, planner=StatePlanner(domain, users, 0),
    )  # fmt: skip


def _shop_blueprint(number: int, action: str, order_id: str, **arguments) -> Blueprint:
    return Blueprint(
        id=f"bp{number}", env="shop", seed=0, user_id="u0", persona="User 0", instruction=f"{action} {order_id}",
        actions=[{"name": action, "arguments": {"order_id": order_id, **arguments}}],
    )  # fmt: skip


CANCEL_O00 = ("cancel_order", "o00", {"reason": "ordered by mistake"})
RETURN_O01 = ("return_order", "o01", {})


@pytest.mark.parametrize(
    ("first", "second", "stage"),
    [
        # Both parents are valid alone; together the second act finds the order no longer in its state.
        (CANCEL_O00, ("cancel_order", "o00", {"reason": "no longer needed"}), "execution"),
        (RETURN_O01, RETURN_O01, "execution"),
        # Independent changes on the same customer's orders combine.
        (CANCEL_O00, RETURN_O01, None),
    ],
)
def test_recombination_rejects_combinations_that_conflict(tmp_path, first, second, stage):
    domain = make_shop_domain(tmp_path)
    config = _config(proposal={"type": "grounded"})
    group = [
        _shop_blueprint(number, name, order, **arguments)
        for number, (name, order, arguments) in enumerate((first, second))
    ]
    for parent in group:  # each one alone executes
        assert validate_execution(list(parent.actions), domain, 0).ok
    outcome = asyncio.run(recombine(_recombination_context(domain, config), group))
    assert outcome.stage == stage, (outcome.stage, outcome.reasons)
    if stage:
        assert outcome.blueprint is None and any(first[1] in reason for reason in outcome.reasons)
    else:
        assert [a.name for a in outcome.blueprint.actions] == [first[0], second[0]]
