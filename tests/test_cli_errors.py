"""Every CLI refuses bad input the way users need: one line on stderr saying what was expected, what
was found and what to do, exit code 2, no traceback, and before any engine starts (these run from a
plain shell in well under a second of work each)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from datagen.cli import DESCRIPTIONS

ROOT = Path(__file__).resolve().parent.parent
APIGEN = str(ROOT / ".venv" / "bin" / "apigen-mt")

DEMO = (ROOT / "recipes" / "datagen" / "demo.yaml").read_text()


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([APIGEN, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _assert_one_line_refusal(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and " WARNING " not in line]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def _recipe(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", ["generate", "blueprints"])
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace("num_tasks: 8", "num_tasks: 0"), "`num_tasks`"),
        (lambda t: t.replace("concurrency: 8", "concurrency: 0"), "`concurrency`"),
        (lambda t: t.replace("env: retail", "env: [retail"), "not valid YAML"),
        (lambda t: t.replace("env: retail", "env: retial"), "retial"),
        (lambda t: t.replace("name: demo-retail", "name: ../escape"), "expected a run name"),
        (
            lambda t: t.replace("  model: smol\n  temperature: 0.8", "  model: teacher\n  temperature: 0.8"),
            "'teacher'",
        ),
    ],
)
def test_datagen_commands_refuse_a_bad_recipe_in_one_line(tmp_path, plain_env, command, change, expected):
    result = _run(
        [command, "--config", _recipe(tmp_path, change(DEMO)), "--out", str(tmp_path / "run")],
        plain_env,
        tmp_path,
    )
    _assert_one_line_refusal(result, expected)
    assert not (tmp_path / "run" / "blueprints.jsonl").exists()


def test_a_missing_recipe_and_a_finished_run_are_one_line(tmp_path, plain_env):
    _assert_one_line_refusal(
        _run(["generate", "--config", "nowhere.yaml"], plain_env, tmp_path), "no recipe at nowhere.yaml"
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "blueprints.jsonl").write_text("")
    result = _run(
        ["generate", "--config", str(ROOT / "recipes/datagen/demo.yaml"), "--out", str(run)],
        plain_env,
        tmp_path,
    )
    _assert_one_line_refusal(result, "--resume")


def test_simulate_refuses_a_recipe_without_phase2_and_a_folder_without_blueprints(tmp_path, plain_env):
    no_phase2 = _recipe(tmp_path, DEMO.split("\nsimulate:")[0])
    _assert_one_line_refusal(
        _run(["simulate", "--config", no_phase2, "--run-dir", str(tmp_path)], plain_env, tmp_path),
        "no `simulate:` section",
    )
    full = str(ROOT / "recipes/datagen/demo.yaml")
    _assert_one_line_refusal(
        _run(["simulate", "--config", full, "--run-dir", str(tmp_path)], plain_env, tmp_path),
        "no blueprints.jsonl",
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--out", "OUT"], "expected --config RECIPE or --env, --model, --user-model"),
        (
            [
                "--env",
                "retail",
                "--model",
                "embedded",
                "--user-model",
                "embedded",
                "--tasks",
                "nope-1",
                "--out",
                "OUT",
            ],
            "unknown task ids",
        ),
        (["--env", "retial", "--model", "embedded", "--user-model", "embedded", "--out", "OUT"], "retial"),
        (
            [
                "--env",
                "retail",
                "--model",
                "embedded",
                "--user-model",
                "embedded",
                "--trials",
                "0",
                "--out",
                "OUT",
            ],
            "`trials`",
        ),
        (
            ["--config", "recipes/eval/tau/demo.yaml", "--user-best-of-n", "0", "--out", "OUT"],
            "`user.best_of_n`",
        ),
    ],
)
def test_eval_tau_refuses_bad_input_in_one_line(tmp_path, plain_env, args, expected):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    _assert_one_line_refusal(_run(["eval", "tau", *args], plain_env, ROOT), expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--out", "OUT"], "expected --config RECIPE or --model"),
        (["--model", "embedded", "--categories", "simple_pythn", "--out", "OUT"], "simple_pythn"),
        (["--config", "recipes/eval/bfcl/demo.yaml", "--limit", "0", "--out", "OUT"], "`limit`"),
    ],
)
def test_eval_bfcl_refuses_bad_input_in_one_line(tmp_path, plain_env, args, expected):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    _assert_one_line_refusal(_run(["eval", "bfcl", *args], plain_env, ROOT), expected)


def test_help_describes_every_command_and_the_table_matches_the_entry_points(plain_env, tmp_path):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "apigen_mt.commands"
    ]
    assert set(declared) == set(DESCRIPTIONS)
    result = _run(["--help"], plain_env, tmp_path)
    assert result.returncode == 0
    for name, about in DESCRIPTIONS.items():
        assert f"{name:<12} {about}" in result.stdout
    assert ":main" not in result.stdout
    version = _run(["--version"], plain_env, tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("apigen-mt ")


def test_every_input_error_is_one_line_and_exit_2(capsys):
    """The command layer catches the one base class (apigen_rules.errors.InputError): a recipe, flag,
    domain or references error, and any later kind that derives from it, is one line and exit 2."""
    from apigen_rules.errors import InputError, UsageError
    from datagen.cli_errors import run_command
    from datagen.envs.references import ReferencesError
    from datagen.envs.registry import DomainLoadError
    from datagen.recipe import RecipeError

    class NewKind(InputError):
        pass

    for kind in (UsageError, RecipeError, DomainLoadError, ReferencesError, NewKind):
        assert issubclass(kind, InputError)

        def body(kind: type[Exception] = kind) -> int:
            raise kind(f"expected a {kind.__name__}, found one; do this")

        assert run_command("probe", body) == 2
        assert capsys.readouterr().err == f"apigen-mt probe: expected a {kind.__name__}, found one; do this\n"
    # the old built-in bases stay, so `except ValueError` / `except RuntimeError` catch what they did
    assert issubclass(RecipeError, ValueError) and issubclass(DomainLoadError, RuntimeError)
