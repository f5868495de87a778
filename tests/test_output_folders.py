"""Every writer's `--out` goes through one check (`datagen.rundir.check_output_folder`): a path that is a
file (or a link to nothing, or under a file) and, for the commands that write beside what they read
(`export`, `view`), a folder inside their input are refused in one line, exit 2, before any work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT
from exportrun import write_run

from apigen_rules.errors import UsageError
from datagen.records import Blueprint
from datagen.rundir import DatagenRun, check_output_folder


def test_the_check(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    run = tmp_path / "run"
    run.mkdir()
    for out, found in (
        (tmp_path / "file", "found a file"),
        (tmp_path / "dangling", "found a link that leads nowhere"),
        (tmp_path / "file" / "sub", f"found that {tmp_path / 'file'} is a file"),
    ):
        with pytest.raises(
            UsageError, match=f"expected a folder to write into, {found}; choose another --out"
        ):
            check_output_folder(out)
    for out, found in ((run, "the input itself"), (run / "a" / "b", "one inside it"), (run / ".." / "run" / "x", "one inside it")):  # fmt: skip
        with pytest.raises(UsageError, match=f"expected a folder outside the input {run}, found {found}"):
            check_output_folder(out, reads=[run])
    for out in (tmp_path / "new" / "deep", run, tmp_path / "runs", tmp_path / "run2"):
        assert check_output_folder(out, reads=[tmp_path / "run2-missing", tmp_path / "file"]) == out
    assert check_output_folder(tmp_path / "out", reads=[run]) == tmp_path / "out"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    run = write_run(root / "run", 3)
    blueprint = Blueprint(id="b0", env="retail", seed=0, persona="p", instruction="i", actions=[])
    DatagenRun(run).blueprints.write_text(blueprint.model_dump_json() + "\n")
    (root / "file").write_text("not a folder")
    return {"run": run, "file": root / "file", "recipe": ROOT / "recipes" / "datagen" / "demo.yaml"}


COMMANDS = {
    "export": ["export", "{run}", "--out", "{out}"],
    "view": ["view", "{run}", "--out", "{out}"],
    "report": ["report", "{run}", "--out", "{out}"],
    "generate": ["generate", "--config", "{recipe}", "--out", "{out}"],
    "blueprints": ["blueprints", "--config", "{recipe}", "--out", "{out}"],
    "simulate": ["simulate", "--config", "{recipe}", "--run-dir", "{run}", "--out", "{out}"],
    "envs new": ["envs", "new", "my_domain", "--out", "{out}"],
    "eval bfcl-score": ["eval", "bfcl-score", "{run}", "--out", "{out}"],
    "eval bfcl": ["eval", "bfcl", "--model", "embedded", "--categories", "simple_python", "--out", "{out}"],
    "eval tau": ["eval", "tau", "--env", "retail", "--model", "embedded", "--user-model", "embedded", "--out", "{out}"],
    "eval next-action": ["eval", "next-action", "--data", "{run}", "--model", "embedded", "--split", "train", "--out", "{out}"],
}  # fmt: skip


def _run(args: list[str], env: dict[str, str], **paths: Path) -> subprocess.CompletedProcess:
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    return subprocess.run([APIGEN_MT, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_out_that_is_a_file_is_one_line(
    command: str, inputs: dict[str, Path], plain_env: dict[str, str]
):
    done = _run(
        COMMANDS[command], plain_env, out=inputs["file"], **{k: v for k, v in inputs.items() if k != "file"}
    )
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("INFO ")]
    assert done.returncode == 2, done.stderr
    assert (
        len(lines) == 1
        and f"--out {inputs['file']}: expected a folder to write into, found a file" in lines[0]
    ), done.stderr
    assert inputs["file"].read_text() == "not a folder"


@pytest.mark.parametrize("command", ["export", "view"])
def test_an_out_inside_the_input_is_one_line(
    command: str, inputs: dict[str, Path], plain_env: dict[str, str]
):
    before = sorted(p.name for p in inputs["run"].iterdir())
    done = _run(
        COMMANDS[command],
        plain_env,
        out=inputs["run"] / "site",
        **{k: v for k, v in inputs.items() if k != "file"},
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"expected a folder outside the input {inputs['run']}, found one inside it" in lines[0]
    assert sorted(p.name for p in inputs["run"].iterdir()) == before
