"""Every kind of run saves its settings under one name, in one format, atomically, through one guard
(datagen/rundir/base.py), and runs made before that name existed are still read, resumed, reported
and shown."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from cli_runs import APIGEN_MT, ROOT, dead_port

from apigen_rules.errors import UsageError
from datagen.rundir import BfclRun, DatagenRun, NextActionRun, RunDir, TauRun

KINDS = [DatagenRun, TauRun, NextActionRun, BfclRun]
SETTINGS = {"model": "m", "backend": "openai", "mode": "fc", "seed": 0, "max_tokens": 64, "temperature": 0.0}


def _hold_records(run: RunDir) -> None:
    """Gives ``run`` one record file of its kind (a run that has made something)."""
    if isinstance(run, DatagenRun):
        run.blueprints.write_text("")
    elif isinstance(run, TauRun):
        run.results.write_text("")
    elif isinstance(run, NextActionRun):
        run.turns.write_text("")
    else:
        path = BfclRun.result_file(run.result_folder("m"), "simple_python")
        path.parent.mkdir(parents=True)
        path.write_text("")
    assert run.held_records()


def _write_old_settings(run: RunDir, settings: dict) -> Path:
    """The settings as the version before one name wrote them: config.yaml (datagen, YAML),
    config.json (τ), next_action_config.json, run_metadata.json."""
    path = run.old_settings
    assert path is not None and path.name != run.settings.name
    run.root.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".yaml":
        path.write_text(yaml.safe_dump(settings))
    else:
        path.write_text(json.dumps(settings, indent=2))
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_saves_one_settings_file_atomically_and_redacted(tmp_path: Path, kind: type[RunDir]):
    run = kind(tmp_path / "run")
    run.open_for_writing({**SETTINGS, "base_urls": ["http://me:s3cret@host/v1"]}, resume=False)
    assert sorted(p.name for p in run.root.iterdir()) == ["settings.json"]  # no temporary file, no old name
    text = run.settings.read_text()
    assert "s3cret" not in text and json.loads(text)["model"] == "m"  # JSON, credentials redacted
    assert run.read_settings() == {**SETTINGS, "base_urls": ["http://<redacted>@host/v1"]}
    assert {cls.__name__: cls(run.root).read_settings() is not None for cls in KINDS} == {
        cls.__name__: cls is kind for cls in KINDS
    }  # no kind of run is taken for another


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_made_before_is_read_and_resumed_under_its_old_name(tmp_path: Path, kind: type[RunDir]):
    run = kind(tmp_path / "run")
    old = _write_old_settings(run, SETTINGS)
    _hold_records(run)
    assert run.settings_file() == old and run.read_settings() == SETTINGS
    with pytest.raises(FileExistsError, match="pass --resume"):
        run.open_for_writing(SETTINGS, resume=False)
    with pytest.raises(UsageError, match=f"model: 'm' -> 'other'.*saved in {old}"):
        run.open_for_writing({**SETTINGS, "model": "other"}, resume=True)
    before = old.read_text()
    run.open_for_writing({**SETTINGS, "concurrency": 8}, resume=True)  # how it runs may change
    assert old.read_text() == before  # the old file is left as it was; only the new name is written
    assert run.settings_file() == run.settings and run.read_settings() == {**SETTINGS, "concurrency": 8}


def test_a_folder_of_another_kind_of_run_is_refused(tmp_path: Path):
    TauRun(tmp_path).open_for_writing(SETTINGS, resume=False)
    for kind in (DatagenRun, NextActionRun, BfclRun):
        with pytest.raises(UsageError, match=f"expected a folder for a {kind.kind} run, found a tau run's"):
            kind(tmp_path).open_for_writing(SETTINGS, resume=True)
    assert TauRun(tmp_path).read_settings() == SETTINGS


def test_a_run_that_made_nothing_yet_takes_new_settings_without_resume(tmp_path: Path):
    run = NextActionRun(tmp_path)
    run.open_for_writing(SETTINGS, resume=False)
    run.open_for_writing({**SETTINGS, "model": "other"}, resume=False)  # it stopped at start-up
    assert run.read_settings()["model"] == "other"


def test_bfcl_resumes_with_more_categories_but_not_another_model(tmp_path: Path):
    run = BfclRun(tmp_path)
    run.open_for_writing({**SETTINGS, "categories": ["simple_python"]}, resume=False)
    _hold_records(run)
    run.open_for_writing({**SETTINGS, "categories": ["simple_python", "multiple"]}, resume=True)
    with pytest.raises(UsageError, match="max_tokens: 64 -> 128"):
        run.open_for_writing({**SETTINGS, "max_tokens": 128}, resume=True)


def test_reports_and_pages_read_runs_made_before(tmp_path: Path):
    from evaluation.bfcl import results
    from evaluation.report.collect import _bfcl_model
    from viewer.kinds import kind_of

    bfcl = BfclRun(tmp_path / "bfcl")
    _write_old_settings(bfcl, {**SETTINGS, "format": "python", "label": "old-model"})
    folder = bfcl.result_folder("m")
    folder.mkdir()
    assert results.read_metadata(folder)["format"] == "python"  # found from the result folder, upwards
    assert _bfcl_model(BfclRun.scores_file(bfcl.score_dir)) == "old-model"
    assert kind_of(bfcl.root).name == "BFCL evaluation"
    datagen = DatagenRun(tmp_path / "datagen")
    _write_old_settings(datagen, {"name": "old", "env": "retail", "license": "mit"})
    assert kind_of(datagen.root).name == "datagen run" and datagen.read_recipe()["license"] == "mit"
    tau = TauRun(tmp_path / "tau")
    _write_old_settings(tau, {"env": "bank", "trials": 1})
    tau.results.write_text("")
    assert kind_of(tau.root).name == "τ evaluation" and tau.read_recipe() == {"env": "bank", "trials": 1}
    # A τ run's settings above a folder of BFCL results are not taken for the BFCL run's.
    TauRun(tmp_path / "mixed").open_for_writing(SETTINGS, resume=False)
    (tmp_path / "mixed" / "results").mkdir()
    assert results.read_metadata(tmp_path / "mixed" / "results") == {}


def test_eval_tau_resumes_a_run_made_before_under_its_old_settings_name(tmp_path: Path, plain_env):
    """As users run it: a τ run whose settings are in the old config.json continues with --resume,
    is refused with a changed recipe (naming the old file), and then saves settings.json."""
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
    argv += ["--out", str(out), "--json", "--trials", "1"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [APIGEN_MT, *argv, *extra], capture_output=True, text=True, env=plain_env, cwd=ROOT, timeout=300
        )

    first = run()
    assert first.returncode == 1 and TauRun(out).held_records(), first.stderr[-2000:]
    saved = json.loads(TauRun(out).settings.read_text())
    saved.pop("run_kind")
    TauRun(out).settings.unlink()
    TauRun(out).old_settings.write_text(json.dumps(saved, indent=2))  # as the version before wrote it
    changed = run("--resume", "--max-steps", "3")
    assert changed.returncode == 2 and "max_steps: 30 -> 3" in changed.stderr, changed.stderr[-2000:]
    assert str(TauRun(out).old_settings) in changed.stderr and not TauRun(out).settings.exists()
    again = run("--resume", "--concurrency", "2")
    assert again.returncode == 1 and "another recipe" not in again.stderr, again.stderr[-2000:]
    assert TauRun(out).read_settings()["concurrency"] == 2 and TauRun(out).settings.is_file()
