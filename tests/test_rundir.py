"""One module owns every run file: no other code spells a run file's name, and its readers never let a
damaged record stop a run."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

from datagen import rundir
from datagen.records import Blueprint
from datagen.rundir import (
    BfclRun,
    DatagenRun,
    NextActionRun,
    TauRun,
    TauScoreRun,
    read_records,
    save_recipe,
)

ROOT = Path(__file__).resolve().parent.parent
CODE = [ROOT / "datagen", ROOT / "evaluation", ROOT / "training", ROOT / "scripts", ROOT / "benchmarks"]


def run_file_names() -> set[str]:
    """Every file name the run-directory classes define (read off the classes, not a copy)."""
    names = set()
    for cls in (DatagenRun, TauRun, TauScoreRun, BfclRun, NextActionRun):
        run = cls(Path("."))
        for attribute, value in inspect.getmembers(cls):
            if isinstance(value, property):
                path = getattr(run, attribute)
                if isinstance(path, Path) and path.suffix:
                    names.add(path.name)
    names.add(BfclRun.scores_file(Path(".")).name)
    # Also the name of every Hugging Face model's config (read by the engine's memory sizing); the τ
    # run's saved recipe is reached through TauRun.recipe.
    names.discard("config.json")
    return names


def test_the_names_are_read_off_the_classes():
    assert {
        "blueprints.jsonl",
        "trajectories.jsonl",
        "results.jsonl",
        "run_metadata.json",
        "turns.jsonl",
    } <= run_file_names()


def test_no_code_outside_rundir_spells_a_run_file_name():
    names = run_file_names()
    offenders = []
    for folder in CODE:
        for path in folder.rglob("*.py"):
            if Path(rundir.__file__).parent in path.parents:  # the rundir package
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for name in names:
                        if node.value == name or node.value.endswith("/" + name):
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert offenders == [], "use datagen.rundir instead of spelling run file names:\n" + "\n".join(offenders)


def test_records_of_the_wrong_shape_are_reported_and_skipped(tmp_path: Path, caplog):
    run = DatagenRun(tmp_path)
    good = Blueprint(id="b1", env="retail", seed=0, persona="p", instruction="i", actions=[]).model_dump(
        mode="json"
    )
    run.blueprints.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps({"id": "b2"})
        + "\n"
        + "[1, 2]\n"
        + json.dumps(good | {"id": "b3"})
        + "\n"
    )
    records = read_records(run.blueprints, Blueprint)
    assert [b.id for b in records] == ["b1", "b3"]
    assert "blueprints.jsonl:2: expected a Blueprint record" in caplog.text


def test_the_saved_recipe_has_no_credentials(tmp_path: Path):
    run = DatagenRun(tmp_path)
    save_recipe(
        run.recipe, {"models": {"t": {"base_urls": ["http://me:p@ss@w0rd@host/v1"], "hub_token": "hf_x"}}}
    )
    text = run.recipe.read_text()
    assert "ss@w0rd" not in text and "hf_x" not in text and "<redacted>" in text


def _held_run(tmp_path: Path, recipe: dict) -> DatagenRun:
    run = DatagenRun(tmp_path)
    save_recipe(run.recipe, recipe)
    run.blueprints.write_text("")  # the run has made something: a resume must keep its recipe
    return run


RECIPE = {
    "name": "r",
    "env": "retail",
    "seed": 0,
    "concurrency": 8,
    "num_tasks": 10,
    "models": {"m": {"model": "embedded", "base_urls": ["http://u:pw@a/v1"], "max_concurrency": 64}},
    "generator": {"model": "m", "temperature": 0.7},
    "proposal": {"type": "grounded"},
    "executor": {"type": "local"},
    "simulate": None,
}


@pytest.mark.parametrize(
    "change, named",
    [
        ({"env": "airline"}, "env: 'retail' -> 'airline'"),
        ({"seed": 1}, "seed: 0 -> 1"),
        ({"name": "other"}, "name: 'r' -> 'other'"),
        ({"proposal": {"type": "llm"}}, "proposal.type"),
        ({"models": {"m": {**RECIPE["models"]["m"], "model": "Qwen/Qwen2.5-7B-Instruct"}}}, "models.m.model"),
        ({"generator": {"model": "m", "temperature": 0.9}}, "generator.temperature"),
    ],
)
def test_a_resume_refuses_a_recipe_that_changes_what_the_run_makes(tmp_path: Path, change: dict, named: str):
    from apigen_rules.errors import UsageError

    run = _held_run(tmp_path, RECIPE)
    before = run.recipe.read_text()
    with pytest.raises(UsageError) as refused:
        save_recipe(run.recipe, {**RECIPE, **change})
    assert named in str(refused.value) and "\n" not in str(refused.value)
    assert run.recipe.read_text() == before  # the run keeps the recipe it was made with


def test_a_resume_may_change_how_the_run_goes(tmp_path: Path):
    run = _held_run(tmp_path, RECIPE)
    faster = {
        **RECIPE,
        "concurrency": 64,
        "num_tasks": 20,  # more tasks of the same run: the done ones are kept
        "executor": {"type": "ray", "workers": 4},
        "models": {"m": {**RECIPE["models"]["m"], "base_urls": ["http://b/v1"], "max_concurrency": 8}},
        "simulate": {"agent": {"model": "m"}, "concurrency": 128},  # Phase 2 added after Phase 1
    }
    save_recipe(run.recipe, faster)
    assert run.read_recipe()["executor"] == {"type": "ray", "workers": 4}
    save_recipe(run.recipe, {**faster, "simulate": None})  # `blueprints` without Phase 2 keeps it
    assert run.read_recipe()["simulate"]["concurrency"] == 128
    with pytest.raises(ValueError, match="simulate.agent.model"):
        save_recipe(run.recipe, {**faster, "simulate": {"agent": {"model": "x"}, "concurrency": 128}})


def test_a_run_that_made_nothing_yet_takes_a_new_recipe(tmp_path: Path):
    run = DatagenRun(tmp_path)
    save_recipe(run.recipe, RECIPE)
    save_recipe(run.recipe, {**RECIPE, "env": "airline"})  # it stopped at start-up: fixed and run again
    assert run.read_recipe()["env"] == "airline"


@pytest.mark.parametrize("cls", [DatagenRun, TauRun, NextActionRun])
def test_runs_are_found_under_a_root(tmp_path: Path, cls):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    marker = cls(inner).phase2_stats if cls is DatagenRun else cls(inner).summary
    marker.write_text("{}")
    assert [r.root for r in cls.find(tmp_path)] == [inner]
    others = {DatagenRun, TauRun, NextActionRun} - {cls}
    assert all(list(other.find(tmp_path)) == [] for other in others)  # no kind is taken for another
