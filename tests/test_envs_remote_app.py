"""Bring your own tools: a stateful MCP server written here with fastmcp from scratch (tests/apps/
library_mcp.py, nothing of apigen-mt in it) declared in a recipe by the command that starts it, goes
through `envs check`, `envs call`, Phase 1 and Phase 2 (`apigen-mt generate`), `eval tau` and the export
to a Hugging Face dataset, run as a user runs them (subprocesses from a plain shell, the stub OpenAI
server as the models). A server that cannot start is one line before anything else; a call that times
out and a server that dies are error rows of their jobs; a killed-and-resumed run loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runs import APIGEN_MT, ROOT, run_json

APP = ROOT / "tests" / "apps" / "library_mcp.py"
STUB = ROOT / "tests" / "openai_stub.py"

TASKS = [
    {
        "id": "lib-borrow",
        "user_id": "M1",
        "persona": "Ada Park, brisk",
        "instruction": "You are Ada Park (e-mail ada@example.org). You want to borrow Dune (book B1).",
        "actions": [
            {"name": "find_member", "arguments": {"email": "ada@example.org"}},
            {"name": "borrow_book", "arguments": {"member_id": "M1", "book_id": "B1"}},
        ],
        "outputs": ["L2"],
    },
    {
        "id": "lib-return",
        "user_id": "M2",
        "persona": "Ben Osei, chatty",
        "instruction": "You are Ben Osei (e-mail ben@example.org). You want to return Ulysses, your loan L1.",
        "actions": [
            {"name": "find_member", "arguments": {"email": "ben@example.org"}},
            {"name": "return_book", "arguments": {"loan_id": "L1"}},
        ],
        "outputs": [],
    },
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's folder: its initial state (seed.json) and two gold tasks."""
    folder = tmp_path_factory.mktemp("library")
    subprocess.run([sys.executable, str(APP), "--db", str(folder / "seed.json"), "--init"], check=True)
    (folder / "tasks.json").write_text(json.dumps(TASKS))
    return folder


@pytest.fixture(scope="module")
def stub(app: Path) -> Iterator[str]:
    # The stub's agent says a task's `outputs` when its tasks file has them; these tests need an agent
    # that makes the gold calls and never says an output (a missing output must fail on its own).
    (app / "stub_tasks.json").write_text(
        json.dumps([{k: v for k, v in t.items() if k != "outputs"} for t in TASKS])
    )
    process = subprocess.Popen(
        [sys.executable, str(STUB), "--tasks", str(app / "stub_tasks.json")],
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process.stdout.readline().strip()
    process.kill()
    process.wait()


def env_block(app: Path, **changes: Any) -> dict[str, Any]:
    block = {
        "source": "mcp",
        "name": "library",
        "command": [sys.executable, str(APP), "--db", "{slot_dir}/library.json"],
        "start": {"type": "command", "command": ["cp", str(app / "seed.json"), "{slot_dir}/library.json"]},
        "state": {"type": "resource", "uri": "library://state"},
        "references": {
            "user_table": "members",
            "tables": {"members": "member_id", "books": "book_id", "loans": "loan_id", "counters": "name"},
        },
        "tasks_file": str(app / "tasks.json"),
        "read_tools": ["slow", "crash", "query_table"],
        "timeout_s": 20,
    }
    block.update(changes)
    return block


def recipe(app: Path, stub: str, name: str, env: dict[str, Any] | None = None, **changes: Any) -> Path:
    data = {
        "name": name,
        "env": env or env_block(app),
        "seed": 1,
        "num_tasks": 4,
        "concurrency": 4,
        "models": {
            "stub": {
                "model": "stub",
                "backend": "openai",
                "base_urls": [stub],
                "tool_format": "openai",
                "max_retries": 0,
            }
        },  # fmt: skip
        "generator": {"model": "stub", "max_tokens": 64},
        "proposal": {"type": "grounded", "outputs": False},
        "committee": {"size": 2, "threshold": 0.5},
        "refinement": {"max_rounds": 1},
        "simulate": {
            "agent": {"model": "stub", "mode": "replay", "stop_after_script": True},
            "user": {"model": "stub", "best_of_n": 2},
            "attempts": 2,
            "max_steps": 12,
            "concurrency": 4,
        },
        **changes,
    }
    path = app / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shell(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [APIGEN_MT, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_envs_check_and_call_on_the_app(app: Path, stub: str, plain_env):
    path = recipe(app, stub, "check")
    done = shell(["envs", "check", str(path)], plain_env)
    assert done.returncode == 0 and "OK library: 8 tool schemas valid, 2 tasks replay" in done.stdout, (
        done.stdout + done.stderr
    )
    done = shell(
        ["envs", "call", str(path), "borrow_book", '{"member_id": "M1", "book_id": "B1"}'], plain_env
    )
    assert done.returncode == 0, done.stderr
    assert '"loan_id": "L2"' in done.stdout and "~ books/B1.available: true -> false" in done.stdout
    done = shell(
        ["envs", "call", str(path), "borrow_book", '{"member_id": "M1", "book_id": "B3"}'], plain_env
    )
    assert done.returncode == 1 and "Error: Ulysses (B3) is on loan" in done.stdout
    assert "diff (0 change(s))" in done.stdout


def test_generate_on_the_app_and_export_a_dataset(app: Path, stub: str, plain_env, tmp_path: Path):
    """Phase 1 (grounded proposals from the state the app exposes as a resource) and Phase 2 on one server
    process per concurrent episode, each restored from seed.json; every dialogue is verified by state and
    says so; the export is a Hugging Face dataset whose card names the verification."""
    from datasets import load_dataset

    run = tmp_path / "run"
    summary = run_json(
        ["generate", "--config", str(recipe(app, stub, "gen")), "--out", str(run), "--quiet"], plain_env
    )
    assert summary["phase1"]["total_accepted"] >= 1
    dialogues = rows(run / "trajectories.jsonl") + rows(run / "failures.jsonl")
    assert dialogues and {d["env"] for d in dialogues} == {"library"}
    assert {d["checks"]["verification"] for d in dialogues} == {"state"}
    assert any(d["checks"]["state_match"] for d in dialogues)
    assert not [d for d in dialogues if d["failure"] == "error"], [
        d["checks"].get("error") for d in dialogues
    ]
    blueprint = rows(run / "blueprints.jsonl")[0]
    assert blueprint["env"] == "library" and blueprint["actions"]
    out = tmp_path / "hf"
    done = shell(
        ["export", str(run), "--out", str(out), "--output-format", "hf", "--include-ungrounded"], plain_env
    )
    assert done.returncode == 0, done.stderr
    data = load_dataset(str(out))
    exported = [row for split in data.values() for row in split]
    assert exported and {row["env"] for row in exported} == {"library"}
    assert {row["verification"] for row in exported} == {"state"}
    assert "Verification: state" in (out / "README.md").read_text()


def test_a_server_without_state_is_verified_by_its_actions(app: Path, stub: str, plain_env, tmp_path: Path):
    """state: none: a dialogue is judged by its write calls against the replayed ground truth's, plus the
    outputs. `eval tau` on the gold tasks, whose calls the stub's agent makes: both match by their calls;
    the task that expects the new loan's id fails on that output alone (the stub never says it)."""
    env = env_block(app, state={"type": "none"}, references=None)
    path = recipe(app, stub, "stateless", env=env, proposal={"type": "llm"})
    out = tmp_path / "tau"
    args = [
        "eval", "tau", "--env", str(path), "--model", "stub", "--backend", "openai", "--base-url", stub,
        "--tool-format", "openai", "--user-model", "stub", "--trials", "1", "--tasks", "gold",
        "--out", str(out), "--json",
    ]  # fmt: skip
    result = run_json(args, plain_env)
    assert result["env"] == "library"
    trials = {t["task_id"]: t for t in rows(next(out.glob("*.jsonl")))}
    assert {t["checks"]["verification"] for t in trials.values()} == {"actions"}
    assert all(t["checks"]["state_match"] for t in trials.values())
    assert trials["lib-return"]["reward"] == 1.0
    # Phase 1 without state: LLM proposals run (the stub writes no actions, so its drafts are refused
    # by the validators, not by an error); grounded ones, which need data, are refused in one line.
    run = tmp_path / "run"
    summary = run_json(["generate", "--config", str(path), "--out", str(run), "--quiet"], plain_env)
    assert summary["phase1"]["proposed"] == 4
    stages = {r["stage"] for r in rows(run / "rejections.jsonl")}
    assert stages and "error" not in stages, stages
    grounded = recipe(app, stub, "stateless-grounded", env=env)
    done = shell(["generate", "--config", str(grounded), "--out", str(tmp_path / "g")], plain_env)
    assert done.returncode == 2 and "exposes no state, and grounded proposals" in done.stderr, done.stderr
    assert trials["lib-borrow"]["reward"] == 0.0 and trials["lib-borrow"]["checks"]["missing_outputs"] == [
        "L2"
    ]


def test_state_read_by_declared_calls_equals_the_state_resource(app: Path):
    """A server whose state is read by a declared read call per table (as an off-the-shelf database
    server's query tool) is verified by the same tables and hashes as through its state resource."""
    from datagen.envs.registry import get_domain
    from datagen.envs.remote.domain import RemoteDomain
    from datagen.recipe.remote_env import McpEnv

    keys = {"members": "member_id", "books": "book_id", "loans": "loan_id", "counters": "name"}
    calls = {t: {"tool": "query_table", "arguments": {"table": t}, "key": k} for t, k in keys.items()}
    by_resource = get_domain(McpEnv.model_validate(env_block(app, name="library-resource")))
    by_calls = get_domain(
        McpEnv.model_validate(env_block(app, name="library-calls", state={"type": "calls", "tables": calls}))
    )
    assert isinstance(by_calls, RemoteDomain) and by_calls.state_kind == "calls"
    for task in by_resource.gold_tasks:
        one, other = by_resource.env_for_task(task), by_calls.env_for_task(task)
        assert one.snapshot() == other.snapshot() and one.state_hash() == other.state_hash()
        one.replay(task.actions)
        other.replay(task.actions)
        assert one.snapshot() == other.snapshot() and one.state_hash() == other.state_hash()
        assert one.state_hash() != by_resource.new_env(0).state_hash()
        one.close()
        other.close()


def test_a_server_that_cannot_start_is_one_line(app: Path, stub: str, plain_env, tmp_path: Path):
    env = env_block(app, command=[sys.executable, "-c", "import sys; sys.exit(3)"], start={"type": "restart"})
    path = recipe(app, stub, "broken", env=env, models={"smol": {"model": "embedded", "backend": "vllm"}},
                  generator={"model": "smol"}, simulate={"agent": {"model": "smol"}, "user": {"model": "smol"}})  # fmt: skip
    done = shell(["generate", "--config", str(path), "--out", str(tmp_path / "run")], plain_env, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("INFO")]
    assert len(lines) == 1 and "env 'library': cannot reach MCP server" in lines[0], done.stderr
    assert "vllm" not in done.stderr.lower()


def test_a_stalled_or_dead_server_is_an_error_row(app: Path, stub: str, tmp_path: Path):
    """A call past the deadline and a server that exits mid-episode fail their own jobs (error rows); the
    other jobs of the batch, run after them on fresh processes, are verified as usual."""
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.recipe.datagen import load_datagen_recipe
    from datagen.records import Blueprint
    from datagen.rundir import DatagenRun
    from datagen.simulate.runner import SimulationRunner

    env = env_block(app, name="library-faults", timeout_s=3)
    overrides = {"simulate.agent": {"model": "stub"}, "simulate.attempts": 1}
    config = load_datagen_recipe(recipe(app, stub, "faults", env=env), overrides)
    get_domain(config.env)

    def blueprint(id_: str, calls: list[dict[str, Any]], task: dict[str, Any]) -> Blueprint:
        return Blueprint(id=id_, env="library-faults", seed=0, persona=task["persona"], instruction=task["instruction"],
                         actions=calls, outputs=[])  # fmt: skip

    slow = blueprint("slow", [{"name": "slow", "arguments": {"seconds": 30}}], TASKS[1])
    crash = blueprint("crash", [{"name": "crash", "arguments": {}}], TASKS[1])
    good = [blueprint(t["id"], t["actions"], t) for t in TASKS]

    async def run() -> None:
        async with ModelPool(config.used_specs()) as pool:
            await SimulationRunner(config.phase2(), DatagenRun(tmp_path), get_domain, pool).run(
                [slow, crash, *good]
            )

    asyncio.run(run())
    found = {
        r["blueprint_id"]: r
        for r in rows(tmp_path / "trajectories.jsonl") + rows(tmp_path / "failures.jsonl")
    }
    assert (
        found["slow"]["failure"] == "error" and "did not answer within 3s" in found["slow"]["checks"]["error"]
    )
    assert found["crash"]["failure"] == "error" and "Connection closed" in found["crash"]["checks"]["error"]
    for task in TASKS:
        assert found[task["id"]]["checks"]["state_match"], found[task["id"]]["checks"]


def test_generate_resumes_on_the_app(app: Path, stub: str, plain_env, tmp_path: Path):
    path = recipe(app, stub, "resume")
    run = tmp_path / "run"
    run_json(["generate", "--config", str(path), "--out", str(run), "--limit", "2", "--quiet"], plain_env)
    before = {r["task_id"] for r in rows(run / "events.jsonl") if r.get("event") == "task_done"}
    attempts_before = len(
        rows(run / "trajectories.jsonl") + rows(run / "failures.jsonl") + rows(run / "duplicates.jsonl")
    )
    run_json(
        ["generate", "--config", str(path), "--out", str(run), "--limit", "4", "--resume", "--quiet"],
        plain_env,
    )
    done = [r["task_id"] for r in rows(run / "events.jsonl") if r.get("event") == "task_done"]
    assert len(done) == len(set(done)) == 4 and before <= set(done)
    ids = [r["id"] for r in rows(run / "trajectories.jsonl") + rows(run / "failures.jsonl")]
    assert len(ids) == len(set(ids)) and len(ids) + len(rows(run / "duplicates.jsonl")) >= attempts_before


@pytest.mark.slow
def test_generate_on_the_app_with_the_embedded_model(app: Path, plain_env, tmp_path: Path):
    """The same recipe with the embedded SmolLM2-135M in an in-process vLLM engine in every role (as
    recipes/datagen/demo.yaml): Phase 1 and Phase 2 on the app, dialogues verified by its state and
    exported to a Hugging Face dataset."""
    from datasets import load_dataset

    smol = {"models": {"smol": {"model": "embedded", "backend": "vllm", "max_model_len": 8192}}}
    path = recipe(
        app,
        "",
        "embedded",
        **smol,
        num_tasks=3,
        generator={"model": "smol", "temperature": 0.8, "max_tokens": 320},
        committee={"size": 2, "threshold": 0.5, "max_tokens": 192},
        refinement={"max_rounds": 1, "feedback_max_tokens": 128},
        simulate={
            "agent": {"model": "smol", "mode": "replay", "stop_after_script": True, "max_tokens": 96},
            "user": {"model": "smol", "best_of_n": 2, "max_tokens": 64, "judge_max_tokens": 48},
            "attempts": 2,
            "max_steps": 12,
        },
    )
    run = tmp_path / "run"
    run_json(["generate", "--config", str(path), "--out", str(run), "--quiet"], plain_env, timeout=3000)
    dialogues = rows(run / "trajectories.jsonl") + rows(run / "failures.jsonl")
    assert dialogues, "phase 1 accepted no blueprint (see rejections.jsonl)"
    assert {d["checks"]["verification"] for d in dialogues} == {"state"}
    assert not [d for d in dialogues if d["failure"] == "error"], [
        d["checks"].get("error") for d in dialogues
    ]
    out = tmp_path / "hf"
    done = shell(
        ["export", str(run), "--out", str(out), "--output-format", "hf", "--include-ungrounded"], plain_env
    )
    assert done.returncode == 0, done.stderr
    exported = [row for split in load_dataset(str(out)).values() for row in split]
    assert {row["env"] for row in exported} <= {"library"}
    assert all(row["messages"][0]["role"] == "system" for row in exported)
