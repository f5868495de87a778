"""The command layer every evaluation shares (evaluation/command.py): recipe + flags merged by one
function, one progress line, and every evaluation command built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from apigen_rules.errors import UsageError
from datagen.runner.batch import BatchCounts
from evaluation.command import RunProgress, recipe_with_flags

ROOT = Path(__file__).resolve().parent.parent


def test_without_a_recipe_the_needed_flags_are_named():
    with pytest.raises(UsageError, match="expected --config RECIPE or --data, --model; found neither"):
        recipe_with_flags(None, needed={"--data": None, "--model": None}, roles={}, overrides={})


def test_flags_go_to_the_alias_each_role_names_and_unset_flags_change_nothing(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "models": {"big": {"model": "org/big", "backend": "vllm"}, "sim": {"model": "org/sim"}},
                "agent": {"model": "big", "max_tokens": 64},
                "user": {"model": "sim"},
                "trials": 2,
            }
        )
    )
    data, source = recipe_with_flags(
        recipe,
        needed={"--model": None},
        roles={
            "agent": {"backend": "openai", "base_urls": ["http://h/v1"], "model": None},
            "user": {"model": None},
        },
        overrides={"trials": None, "agent.max_tokens": 128, "concurrency": 4},
    )
    assert source == str(recipe)
    assert data["models"]["big"] == {"model": "org/big", "backend": "openai", "base_urls": ["http://h/v1"]}
    assert data["models"]["sim"] == {"model": "org/sim"}
    assert data["agent"] == {"model": "big", "max_tokens": 128} and data["trials"] == 2
    assert data["concurrency"] == 4


def test_without_a_recipe_each_role_gets_an_alias_of_its_own_name():
    data, source = recipe_with_flags(
        None, needed={"--model": "m"}, roles={"agent": {"model": "m", "backend": None}}, overrides={}
    )
    assert source == "the command line"
    assert data == {"models": {"agent": {"model": "m"}}, "agent": {"model": "agent"}}


def test_the_progress_line_counts_rows_and_batch_counts():
    rows = RunProgress("tau", "trials", 4, tallies={"success": "successful"}, quiet=True)
    for row in ({"success": True}, {"success": False}, {}):
        rows.row_done(row)
    assert rows.line() == "[tau] 3/4 trials, 1 successful"
    batch = RunProgress("bfcl", "items", tallies={"skipped": "done before", "errors": "errors"}, quiet=True)
    batch.batch_counts(BatchCounts(submitted=10, skipped=2, finished=5, errors=1))
    assert batch.line() == "[bfcl] 5/10 items, 2 done before, 1 errors"


@pytest.mark.parametrize(
    "path", ["evaluation/tau/cli.py", "evaluation/bfcl/cli.py", "evaluation/next_action/cli.py"]
)
def test_each_evaluation_command_uses_the_layer_instead_of_its_own_copy(path: str):
    """No evaluation command reads the recipe, checks --resume, writes its settings or draws its
    progress line itself: those are the layer's and the run directory's."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    called = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert {"recipe_with_flags", "output_run", "open_for_writing", "RunProgress"} <= called
    assert not called & {
        "read_recipe_data",
        "check_resume",
        "check_output_folder",
        "ProgressLine",
        "set_override",
    }
