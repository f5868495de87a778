"""`--resume` continues a run only with the recipe it was made with (datagen/rundir/guard.py: check_resume):
`generate`, `blueprints`, `simulate`, `eval tau` and `eval next-action` refuse, in one line naming
the keys, a change to what the run makes; a change of how it runs (concurrency, executor, servers)
goes on. Run as users run them: the installed `apigen-mt` from a plain shell."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from cli_runs import APIGEN_MT, ROOT, dead_port, gold_blueprint_line

from datagen.rundir import DatagenRun, TauRun, save_recipe


def _recipe(tmp_path: Path, name: str = "recipe.yaml", **changes) -> Path:
    """The demo recipe on a model server that refuses connections (nothing slow ever starts)."""
    data = yaml.safe_load((ROOT / "recipes" / "datagen" / "demo.yaml").read_text())
    data["models"]["smol"] = {
        "model": "m",
        "backend": "openai",
        "tool_format": "hermes",
        "base_urls": [f"http://127.0.0.1:{dead_port()}/v1"],
        "max_retries": 0,
    }
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([APIGEN_MT, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture
def started_run(tmp_path: Path) -> Path:
    """A retail run that has made one blueprint, with its saved recipe."""
    from datagen.recipe.datagen import load_datagen_recipe

    run = DatagenRun(tmp_path / "run")
    run.root.mkdir()
    save_recipe(run.recipe, load_datagen_recipe(_recipe(tmp_path)).model_dump(mode="json"))
    run.blueprints.write_text(gold_blueprint_line("retail"))
    return run.root


def _assert_refused(done: subprocess.CompletedProcess[str], *keys: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "another recipe" in lines[0] and all(key in lines[0] for key in keys), lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--resume", "--quiet", "--out"],
        ["blueprints", "--resume", "--quiet", "--out"],
        ["simulate", "--quiet", "--run-dir"],
    ],
    ids=["generate", "blueprints", "simulate"],
)
def test_a_changed_recipe_is_refused_in_one_line(
    command: list[str], started_run: Path, tmp_path: Path, plain_env: dict[str, str]
):
    before = DatagenRun(started_run).recipe.read_text()
    airline = _recipe(tmp_path, "airline.yaml", env="airline", seed=3)
    done = _run([command[0], "--config", str(airline), *command[1:], str(started_run)], plain_env)
    _assert_refused(done, "env: 'retail' -> 'airline'", "seed: 0 -> 3")
    assert DatagenRun(started_run).recipe.read_text() == before
    assert DatagenRun(started_run).blueprints.read_text() == gold_blueprint_line("retail")


def test_a_change_of_how_the_run_goes_is_resumed(
    started_run: Path, tmp_path: Path, plain_env: dict[str, str]
):
    """More concurrency and another server for the same model: the run goes on (and stops because
    that server is down too: exit 1, not the refusal's 2)."""
    faster = _recipe(tmp_path, "faster.yaml", concurrency=32)
    done = _run(
        ["simulate", "--config", str(faster), "--run-dir", str(started_run), "--concurrency", "3"], plain_env
    )
    assert done.returncode == 1 and "unreachable" in done.stderr, done.stderr[-2000:]
    assert "another recipe" not in done.stderr
    assert DatagenRun(started_run).read_recipe()["concurrency"] == 32


def test_tau_resume_refuses_other_trials_and_allows_more_concurrency(
    tmp_path: Path, plain_env: dict[str, str]
):
    out = tmp_path / "tau"
    argv = ["eval", "tau", "--env", "bank", "--limit", "1", "--backend", "openai", "--model", "m"]
    argv += [
        "--tool-format",
        "hermes",
        "--user-model",
        "m",
        "--base-url",
        f"http://127.0.0.1:{dead_port()}/v1",
    ]
    argv += ["--out", str(out), "--json"]
    first = _run([*argv, "--trials", "1"], plain_env)
    assert first.returncode == 1 and TauRun(out).recipe.is_file(), first.stderr[-2000:]
    faster = _run([*argv, "--trials", "1", "--concurrency", "3", "--resume"], plain_env)
    assert faster.returncode == 1 and "another recipe" not in faster.stderr, faster.stderr[-2000:]
    _assert_refused(_run([*argv, "--trials", "2", "--resume"], plain_env), "trials: 1 -> 2")
    assert json.loads(TauRun(out).recipe.read_text())["trials"] == 1
