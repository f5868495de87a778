"""`apigen-mt eval tau --tasks` on τ² domains: a split, `all` (every split, each task once) and task
ids from any split, run through the CLI against a loopback server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apigen_rules.errors import UsageError
from datagen.envs.registry import get_domain
from datagen.rundir import TauRun
from evaluation.tau.cli import select_tasks

STUB = Path(__file__).with_name("openai_stub.py")


@pytest.fixture(scope="module")
def retail():
    return get_domain("tau2-retail")


def test_all_is_every_split_with_each_task_once(retail):
    everything = select_tasks(retail, "all", None)
    ids = [t.id for t in everything]
    assert len(ids) == len(set(ids))
    by_split = {t.id for split in retail.splits for t in retail.tasks(split=split)}
    assert set(ids) == by_split and len(ids) > len(retail.tasks(split="test"))


def test_task_ids_from_any_split_are_selected_in_the_order_given(retail):
    test_id = retail.tasks(split="test")[0].id
    other = next(t.id for split in retail.splits if split != "test" for t in retail.tasks(split=split))
    chosen = select_tasks(retail, f"{other}, {test_id}", None)
    assert [t.id for t in chosen] == [other, test_id]
    assert [t.id for t in select_tasks(retail, "test", 2)] == [t.id for t in retail.tasks(split="test")[:2]]


def test_an_unknown_id_is_refused_in_one_line_naming_it(retail):
    with pytest.raises(UsageError, match="unknown task ids for tau2-retail: \\['no-such-task'\\]"):
        select_tasks(retail, "no-such-task", None)


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(STUB)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    yield process.stdout.readline().strip()
    process.kill()
    process.wait()


def test_eval_tau_runs_tau2_tasks_named_by_id(stub: str, plain_env: dict[str, str], tmp_path: Path, retail):
    ids = [retail.tasks(split="test")[0].id, retail.tasks(split="test")[1].id]
    argv = ["--env", "tau2-retail", "--tasks", ",".join(ids), "--trials", "1", "--model", "m"]
    argv += ["--backend", "openai", "--base-url", stub, "--tool-format", "openai", "--user-model", "u"]
    argv += ["--max-steps", "4", "--out", str(tmp_path / "out"), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "datagen.cli", "eval", "tau", *argv],
        capture_output=True,
        text=True,
        env=plain_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tasks"] == 2
    rows = [json.loads(line) for line in TauRun(tmp_path / "out").results.read_text().splitlines()]
    assert sorted(r["task_id"] for r in rows) == sorted(ids)
