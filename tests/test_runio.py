"""Run files: every damaged line is reported with its file and line and skipped, a complete last record
is never cut, and what is cut is kept; the readers that resume and export a run go on past damage."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toydomain import make_toy_domain

from apigen_rules.jsonl import CUT_SUFFIX, JsonlAppender, read_jsonl, read_models, repair_tail
from datagen.llm import ModelSpec
from datagen.recipe.episode import AgentRole, SimulateConfig, UserRole
from datagen.records import Blueprint, Trajectory
from datagen.rundir import DatagenRun, TauRun
from datagen.simulate.runner import SimulationRunner

DAMAGED = {
    b"\xff\xfe not utf-8": "not valid UTF-8",
    b'{"a": ' + b"1" * 5000 + b"}": "will not read",
    b"[" * 100_000 + b"]" * 100_000: "nested too deeply",
    b"[1, 2, 3]": "expected a JSON object, found an array",
    b'"just a string"': "expected a JSON object, found the string 'just a string'",
    b"null": "expected a JSON object, found null",
    b'{"a": ': "not valid JSON",
}


@pytest.mark.parametrize("line, problem", list(DAMAGED.items()), ids=list(DAMAGED.values()))
def test_a_damaged_line_is_reported_with_file_and_line_and_skipped(tmp_path: Path, line: bytes, problem: str):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"n": 1}\n' + line + b'\n{"n": 3}\n')
    rows, problems = read_jsonl(path)
    assert rows == [{"n": 1}, {"n": 3}]
    assert len(problems) == 1 and problems[0].startswith("rows.jsonl:2:") and problem in problems[0]


def test_a_record_of_the_wrong_schema_is_reported_and_skipped(tmp_path: Path):
    path = tmp_path / "blueprints.jsonl"
    good = {"id": "b1", "env": "toy", "seed": 1, "persona": "p", "instruction": "i", "actions": []}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"id": "b2", "env": 3}) + "\n")
    records, problems = read_models(path, Blueprint)
    assert [r.id for r in records] == ["b1"]
    assert len(problems) == 1 and problems[0].startswith("blueprints.jsonl:2: expected a Blueprint record")
    rows, same = read_jsonl(path, Blueprint)
    assert rows == [good] and same == problems


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.binary(max_size=40) | st.sampled_from(list(DAMAGED)) | st.just(b'{"ok": 1}'), max_size=8
    )
)
def test_reading_any_bytes_never_raises(tmp_path: Path, lines: list[bytes]):
    path = tmp_path / "any.jsonl"
    path.write_bytes(b"\n".join(lines))
    rows, problems = read_jsonl(path)
    assert all(isinstance(row, dict) for row in rows)
    assert all(p.startswith("any.jsonl:") for p in problems)


@pytest.mark.parametrize("shape", ["folder", "symlink loop"])
def test_a_record_file_that_is_not_a_file_is_one_problem_and_never_appended_to(tmp_path: Path, shape: str):
    path = tmp_path / "trajectories.jsonl"
    if shape == "folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "loop.jsonl")
        (tmp_path / "loop.jsonl").symlink_to(path)
    rows, problems = read_jsonl(path)
    assert rows == [] and len(problems) == 1
    assert problems[0].startswith("trajectories.jsonl: expected a file of JSON lines, found ")
    assert read_models(path, Trajectory) == ([], problems)
    with pytest.raises(FileExistsError, match="expected a file of JSON lines to append to"):
        JsonlAppender(path)


def test_a_complete_last_record_without_a_newline_is_kept(tmp_path: Path):
    path = tmp_path / "trajectories.jsonl"
    path.write_text('{"n": 1}\n{"n": 2}\n{"n": 3}\n{"n": 4}')  # killed between the record and its newline
    assert read_jsonl(path) == ([{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}], [])
    with JsonlAppender(path) as out:
        out.write({"n": 5})
    assert [r["n"] for r in read_jsonl(path)[0]] == [1, 2, 3, 4, 5]
    assert not path.with_name(path.name + CUT_SUFFIX).exists()


def test_an_unfinished_last_line_is_cut_into_a_side_file_not_lost(tmp_path: Path):
    path = tmp_path / "trajectories.jsonl"
    path.write_text('{"n": 1}\n{"n": 2, "messages": [{"ro')
    rows, problems = read_jsonl(path)
    assert rows == [{"n": 1}] and "incomplete last line" in problems[0]
    assert repair_tail(path) == len('{"n": 2, "messages": [{"ro')
    assert path.read_text() == '{"n": 1}\n'
    assert path.with_name(path.name + CUT_SUFFIX).read_text() == '{"n": 2, "messages": [{"ro\n'


def test_a_record_with_text_that_is_not_valid_unicode_is_written_and_reads_back(tmp_path: Path):
    path = tmp_path / "rows.jsonl"
    with JsonlAppender(path) as out:
        out.write({"text": "bad \ud800"})
        out.write({"text": "fine ü"})
    assert read_jsonl(path) == ([{"text": "bad \ud800"}, {"text": "fine ü"}], [])


def _trajectory(i: int, success: bool) -> dict:
    return Trajectory(
        id=f"bp{i}-a0",
        blueprint_id=f"bp{i}",
        env="toy",
        seed=1,
        messages=[
            {"role": "system", "content": "s"},
            {"role": "user", "content": f"hi {i}"},
            {"role": "assistant", "content": "done"},
        ],
        tools=[],
        success=success,
        reward=float(success),
        failure=None if success else "state_mismatch",
    ).model_dump(mode="json")


def _damage(path: Path) -> None:
    with path.open("ab") as fh:
        for line in DAMAGED:
            fh.write(line + b"\n")
        fh.write(json.dumps({"blueprint_id": "bp9", "attempt": "zero"}).encode() + b"\n")  # wrong schema


def test_phase2_resume_goes_on_past_damaged_lines(tmp_path: Path):
    from scripted import ScriptedModel

    domain = make_toy_domain(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    files = DatagenRun(run)
    files.trajectories.write_text(json.dumps(_trajectory(0, True)) + "\n")
    files.failures.write_text(json.dumps(_trajectory(1, False)) + "\n")
    _damage(files.trajectories)
    _damage(files.failures)
    _damage(files.duplicates)

    class Pool:
        def get(self, alias):
            agent = ScriptedModel(lambda m, k: ["Sorry."])
            return {"agent": agent, "user": ScriptedModel(lambda m, k: ["bye ###STOP###"])}[alias]

    config = SimulateConfig(
        agent=AgentRole(model="agent"),
        user=UserRole(model="user", best_of_n=1),
        attempts=1,
        concurrency=2,
    )
    blueprints = [
        Blueprint(id=f"bp{i}", env="toy", seed=1, persona="p", instruction="i", actions=[]) for i in range(3)
    ]
    summary = asyncio.run(SimulationRunner(config, files, lambda n: domain, Pool()).run(blueprints))
    assert summary["this_session"]["attempts"] == 1  # bp0 and bp1 were done; only bp2 runs
    assert summary["attempts"] == 3


def test_phase1_resume_reads_past_damaged_lines(tmp_path: Path):
    from datagen.blueprint.runner import read_run

    funnel = {"kind": "base", "attempts": [{"passed": []}], "round": 0, "stage": None, "usage": {}}
    good = Blueprint(
        id="run-00000",
        env="toy",
        seed=1,
        persona="p",
        instruction="i",
        actions=[],
        provenance={"funnel": funnel},
    )
    rejected = {
        "task_id": "run-00001",
        "kind": "base",
        "stage": "format",
        "funnel": {**funnel, "stage": "format"},
    }
    run = DatagenRun(tmp_path)
    run.blueprints.write_text(good.model_dump_json() + "\n")
    run.rejections.write_text(json.dumps(rejected) + "\n")
    run.events.write_text('{"event": "session_start"}\n')
    for path in (run.blueprints, run.rejections, run.events):
        _damage(path)
    state = read_run(tmp_path)
    assert [b.id for b in state.accepted] == ["run-00000"]
    assert state.done == {"run-00000", "run-00001"} and state.sessions == 1
    assert state.funnel.as_dict()["proposed"] == 2


def test_tau_resume_goes_on_past_damaged_lines(tmp_path: Path):
    from scripted import ScriptedModel

    from datagen.envs.base import Task
    from evaluation.tau.config import TauConfig
    from evaluation.tau.harness import TauHarness, TrialRecord

    domain = make_toy_domain(tmp_path)
    tasks = [Task(id="noop", persona="p", instruction="just chat", actions=[], outputs=[])]

    class Pool:
        def get(self, alias):
            agent = ScriptedModel(lambda m, k: ["Hello."], "agent")
            return {"agent": agent, "user": ScriptedModel(lambda m, k: ["bye ###STOP###"], "user")}[alias]

    config = TauConfig(
        env="toy",
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent={"model": "agent"},
        user={"model": "user", "best_of_n": 1},
        trials=2,
    )
    out = tmp_path / "out"
    out.mkdir()
    results = TauRun(out).results
    results.write_text(
        json.dumps({"task_id": "noop", "trial": 0, "success": True, "reward": 1.0, "failure": None}) + "\n"
    )
    _damage(results)
    summary = asyncio.run(TauHarness(config, domain, tasks, TauRun(out), Pool()).run())
    assert summary["tasks"] == 1 and summary["pass_k"]["1"] == 1.0
    assert len(read_jsonl(results, TrialRecord)[0]) == 2  # trial 0 kept, trial 1 run
