"""The Ray executor on a real local Ray instance (loopback, 2 CPUs, no dashboard) against the stub
OpenAI server (tests/openai_stub.py): the same run as the local executor, nothing lost when a worker
is killed, and a killed driver resumed with --resume."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from datagen.cli_flags import executor_overrides
from datagen.recipe.executor import RayExecutorConfig
from datagen.runner.executor import open_executor

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "openai_stub.py"
TASKS = 3  # retail gold tasks the stub's agent plays in the killed-worker test


def _start_stub(tmp: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(STUB), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = _start_stub(tmp_path_factory.mktemp("stub"))
    yield url
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only; read when Ray is imported
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _recipe(url: str, **changes: Any) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "name": "stub-retail",
        "env": "retail",
        "seed": 3,
        "num_tasks": 6,
        "concurrency": 4,
        "models": {
            "stub": {
                "model": "stub",
                "backend": "openai",
                "base_urls": [url],
                "tool_format": "openai",
                "max_retries": 0,
            }
        },
        "generator": {"model": "stub", "max_tokens": 64},
        "proposal": {"type": "grounded", "outputs": False},
        "samplers": {"fewshot_range": [1, 2]},
        "committee": {"size": 2, "threshold": 0.5},
        "refinement": {"max_rounds": 1},
        "recombination": {"share": 0.5},
        "simulate": {
            "agent": {"model": "stub", "mode": "replay", "stop_after_script": True},
            "user": {"model": "stub", "best_of_n": 2},
            "attempts": 2,
            "max_steps": 12,
            "concurrency": 8,
        },
    }
    recipe.update(changes)
    return recipe


def _rows(run: Path, name: str) -> list[dict[str, Any]]:
    path = run / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run_content(run: Path) -> dict[str, Any]:
    """What a run produced, without what says when or where (sessions, funnel records, tokens/s)."""
    blueprints = {}
    for row in _rows(run, "blueprints.jsonl"):
        row["provenance"].pop("funnel", None)
        row["provenance"].pop("session", None)
        blueprints[row["id"]] = row
    dialogues = {row["id"]: row for row in _rows(run, "trajectories.jsonl") + _rows(run, "failures.jsonl")}
    return {
        "blueprints": blueprints,
        "rejections": {
            row["task_id"]: (row["stage"], row["reasons"]) for row in _rows(run, "rejections.jsonl")
        },
        "dialogues": dialogues,
        "duplicates": sorted((r["blueprint_id"], r["attempt"]) for r in _rows(run, "duplicates.jsonl")),
    }


def test_local_and_ray_executors_give_the_same_blueprints_and_dialogues(stub, ray_instance, tmp_path):
    from datagen.pipeline import generate
    from datagen.recipe.datagen import DatagenRecipe

    local = DatagenRecipe.model_validate(_recipe(stub))
    on_ray = DatagenRecipe.model_validate(_recipe(stub, executor={"type": "ray", "workers": 2}))
    asyncio.run(generate(local, tmp_path / "local", resume=False, live=False))
    asyncio.run(generate(on_ray, tmp_path / "ray", resume=False, live=False))

    a, b = _run_content(tmp_path / "local"), _run_content(tmp_path / "ray")
    assert len(a["blueprints"]) >= 4
    assert any(
        task.startswith("stub-retail-r") for task in [*a["blueprints"], *a["rejections"]]
    )  # a recombination
    assert len(a["dialogues"]) == 2 * len(a["blueprints"])
    assert a == b  # ids, instructions, actions, sampler draws, every message of every dialogue


def _blueprints_from_gold(count: int) -> list[Any]:
    from datagen.envs.registry import get_domain
    from datagen.records import Blueprint

    domain = get_domain("retail")
    return [
        Blueprint(
            id=task.id,
            env="retail",
            seed=domain.task_seed(task),
            user_id=task.user_id,
            persona=task.persona,
            instruction=task.instruction,
            actions=task.actions,
            outputs=task.outputs,
        )  # fmt: skip
        for task in domain.gold_tasks[:count]
    ]


def test_a_killed_worker_loses_no_job_and_runs_none_twice(ray_instance, tmp_path, caplog):
    from datagen.envs.registry import get_domain
    from datagen.recipe.datagen import DatagenRecipe
    from datagen.rundir import DatagenRun
    from datagen.simulate.runner import SimulationRunner, attempt_key

    blueprints = _blueprints_from_gold(TASKS)
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([b.model_dump(mode="json") for b in blueprints]))
    process, url = _start_stub(tmp_path, "--tasks", str(tasks), "--delay-s", "0.05")
    recipe = _recipe(url, executor={"type": "ray", "workers": 2})
    # 2 in flight per worker: jobs are still being handed out after the kill, so one reaches the dead worker
    recipe["simulate"].update(
        agent={"model": "stub"}, user={"model": "stub", "best_of_n": 1}, attempts=4, concurrency=2
    )
    config = DatagenRecipe.model_validate(recipe)
    killed: list[int] = []

    async def run() -> dict[str, Any]:
        async with open_executor(config.executor, config.used_specs()) as executor:

            def kill_one(stats: Any) -> None:
                if stats.attempts == 2 and not killed:  # later attempts are in flight on both workers
                    killed.append(executor.worker_pids()[0])
                    os.kill(killed[0], signal.SIGKILL)

            runner = SimulationRunner(
                config.phase2(), DatagenRun(tmp_path / "run"), get_domain, None, kill_one, executor
            )
            summary = await runner.run(blueprints)
            for _ in range(300):  # the lost worker is replaced (the run may finish on the other first)
                if len(executor.worker_pids()) == 2:
                    break
                await asyncio.sleep(0.1)
            assert killed[0] not in executor.worker_pids() and len(executor.worker_pids()) == 2
            return summary

    try:
        with caplog.at_level("WARNING"):
            summary = asyncio.run(run())
    finally:
        process.kill()
        process.wait()
    run_dir = tmp_path / "run"
    rows = _rows(run_dir, "trajectories.jsonl") + _rows(run_dir, "failures.jsonl")
    rows += _rows(run_dir, "duplicates.jsonl")
    keys = Counter(attempt_key(r["blueprint_id"], r["attempt"]) for r in rows)
    assert set(keys) == {attempt_key(b.id, a) for b in blueprints for a in range(4)}
    assert set(keys.values()) == {1}  # none lost, none twice
    assert "is lost" in caplog.text
    assert summary["attempts"] == 4 * TASKS and "error" not in summary["failures"]  # none cut by the kill


def test_a_killed_driver_resumes_with_nothing_lost_or_repeated(tmp_path):
    process, url = _start_stub(tmp_path, "--delay-s", "0.1")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(url, num_tasks=10, recombination={"share": 0.0})))
    out = tmp_path / "run"
    command = [
        str(ROOT / ".venv" / "bin" / "apigen-mt"),
        "generate",
        "--config",
        str(recipe),
        "--out",
        str(out),
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    driver = subprocess.Popen(
        [*command, "--executor", "ray", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(_rows(out, "failures.jsonl")) < 3:
            assert driver.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            started |= {p.pid for p in psutil.Process(driver.pid).children(recursive=True)}
            time.sleep(0.2)
        started |= {p.pid for p in psutil.Process(driver.pid).children(recursive=True)}
        driver.kill()
        driver.wait()
        assert len(_rows(out, "failures.jsonl")) < 2 * 10  # killed with dialogues still to play
        resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    finally:
        process.kill()
        process.wait()
        _kill_survivors(started)
    blueprints = [r["id"] for r in _rows(out, "blueprints.jsonl")]
    rejected = [r["task_id"] for r in _rows(out, "rejections.jsonl")]
    assert sorted(blueprints + rejected) == [f"stub-retail-{i:05d}" for i in range(10)]  # each task once
    attempts = Counter((r["blueprint_id"], r["attempt"]) for r in _rows(out, "failures.jsonl"))
    attempts.update((r["blueprint_id"], r["attempt"]) for r in _rows(out, "trajectories.jsonl"))
    assert set(attempts) == {(b, a) for b in blueprints for a in range(2)} and set(attempts.values()) == {1}


def _kill_survivors(pids: set[int]) -> None:
    """Ray processes of a SIGKILLed driver that outlive it (its dashboard and runtime-env agents)."""
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def test_executor_flags_become_recipe_keys():
    assert executor_overrides(None, None) == {}
    assert executor_overrides("ray", 4) == {"executor.type": "ray", "executor.workers": 4}
    assert executor_overrides(None, 3) == {"executor.type": "ray", "executor.workers": 3}
    assert executor_overrides("local", None) == {"executor": {"type": "local"}}
    assert RayExecutorConfig(workers=2).engines_per_worker() is False
    assert RayExecutorConfig(workers=2, num_gpus_per_worker=1).engines_per_worker() is True


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--config", "recipes/datagen/demo.yaml", "--executor", "local", "--workers", "2"],
        ["eval", "tau", "--config", "recipes/eval/tau/demo.yaml", "--out", "OUT", "--workers", "0"],
    ],
)
def test_bad_executor_flags_are_one_line_before_anything_starts(argv, tmp_path):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "apigen-mt"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--workers" in done.stderr
