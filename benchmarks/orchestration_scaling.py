"""The orchestrator's own ceiling: agent+user steps per second and CPU per step of Phase 2, with the
model taken out of the picture.

    .venv/bin/python benchmarks/orchestration_scaling.py [--dialogues 480] [--ray-workers 2]

The model is tests/openai_stub.py: an OpenAI-compatible server on loopback that answers at once with
valid replies (the agent's tool calls are the blueprint's actions, the user says one line and then
###STOP###, the Best-of-N judge gives fixed scores). It stands in for an INFINITELY FAST engine, so
every second and every CPU millisecond measured here is ours: prompt building, HTTP, parsing, schema
checks, environment calls, verdicts, JSONL writes. The stub runs in its own process; its CPU is
reported separately (on a 2-core machine it competes with us for the cores).

Workload: Phase 2 (``SimulationRunner``, the code ``apigen-mt generate``/``simulate`` run) over the
retail domain's gold tasks as blueprints, the agent in ``mode: model`` with native tool calls, the
user with Best-of-N 2 and its judge. A step is one agent turn or one user turn (each one or more LLM
requests). Runs, one after another in this one process:

1. the local executor at concurrency 1, 8, 64, 256: steps/s, CPU ms per step from this process's
   own CPU clock (``time.process_time``), the stub's CPU per step;
2. the same workload on the Ray executor with ``--ray-workers`` workers (concurrency 64 each): its CPU
   per step counts the driver, the workers and Ray's own daemons;
3. from the local per-step cost: how many vLLM servers of a stated throughput one process keeps busy.

Targets: <= 3 ms of orchestrator CPU per step locally; Ray's per-step CPU <= 1.25x local; Ray with
2 workers >= 1.3x the steps/s of one local process. Last line:
``RESULT orchestration_cpu_ms_per_step: <ms> (target <= 3) PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "openai_stub.py"
TARGET_CPU_MS = 3.0
TARGET_RAY_OVERHEAD = 1.25
TARGET_RAY_SPEEDUP = 1.3
LOCAL_LEVELS = (1, 8, 64, 256)
RAY_CONCURRENCY = 64
# A vLLM server's stated throughput for the last figure: an 8B model on one H100 decoding ~4,000
# tokens/s in all, with ~200 generated tokens per request, finishes ~20 requests/s.
SERVER_REQUESTS_PER_S = 20.0


@dataclass
class Measurement:
    label: str
    dialogues: int
    steps: int
    requests: int
    wall_s: float
    cpu_s: float  # ours: this process (plus, on Ray, the workers and Ray's daemons)
    stub_cpu_s: float
    detail: str = ""

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s

    @property
    def cpu_ms_per_step(self) -> float:
        return 1000 * self.cpu_s / self.steps

    @property
    def stub_ms_per_step(self) -> float:
        return 1000 * self.stub_cpu_s / self.steps

    @property
    def cores_used(self) -> float:
        return self.cpu_s / self.wall_s


def gold_blueprints() -> list[Any]:
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
        for task in domain.gold_tasks
    ]


def recipe(url: str, concurrency: int, attempts: int, executor: dict[str, Any]) -> Any:
    from datagen.recipe.datagen import DatagenRecipe

    return DatagenRecipe.model_validate(
        {
            "name": "orchestration",
            "env": "retail",
            "models": {
                "stub": {
                    "model": "stub",
                    "backend": "openai",
                    "base_urls": [url],
                    "tool_format": "openai",
                    "max_concurrency": 4096,
                    "max_retries": 0,
                }  # fmt: skip
            },
            "executor": executor,
            "simulate": {
                "agent": {"model": "stub"},
                "user": {"model": "stub", "best_of_n": 2},
                "attempts": attempts,
                "concurrency": concurrency,
                "max_steps": 30,
            },
        }
    )


def count_steps(run_dir: Path) -> tuple[int, int]:
    """(dialogues, steps): a step is an agent turn or a user turn (the agent's fixed greeting is none)."""
    from datagen.rundir import DatagenRun, read_rows

    run = DatagenRun(run_dir)
    dialogues = steps = 0
    for path in (run.trajectories, run.failures):
        for row in read_rows(path):
            dialogues += 1
            turns = [m for m in row["messages"][1:] if m["role"] in ("assistant", "user")]
            steps += len(turns) - 1  # the greeting
    for _ in read_rows(run.duplicates):
        dialogues += 1  # a duplicate success keeps no messages: counted by its twin's steps
    return dialogues, steps


def stub_requests(url: str) -> int:
    return int(httpx.get(url.removesuffix("/v1") + "/stats").json()["requests"])


def ray_processes(stub_pid: int) -> list[psutil.Process]:
    """Every process Ray started for this one (driver's children but the stub)."""
    return [p for p in psutil.Process().children(recursive=True) if p.pid != stub_pid]


def cpu_of(processes: list[psutil.Process]) -> dict[int, float]:
    found = {}
    for process in processes:
        try:
            times = process.cpu_times()
            found[process.pid] = times.user + times.system
        except psutil.Error:
            pass
    return found


async def run_once(
    label: str,
    url: str,
    stub: psutil.Process,
    concurrency: int,
    attempts: int,
    executor_cfg: dict[str, Any],
    tmp: Path,
) -> Measurement:
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.rundir import DatagenRun
    from datagen.runner.executor import open_executor
    from datagen.simulate.runner import SimulationRunner

    config = recipe(url, concurrency, attempts, executor_cfg)
    blueprints = gold_blueprints()
    run_dir = tmp / label.replace(" ", "_")
    async with (
        ModelPool(config.used_specs()) as pool,
        open_executor(config.executor, config.used_specs()) as ex,
    ):
        # Untimed first: every process builds its clients and imports them on its first jobs.
        warm_dir = DatagenRun(tmp / f"{run_dir.name}-warm")
        await SimulationRunner(config.phase2(), warm_dir, get_domain, pool, executor=ex).run(blueprints[:4])
        runner = SimulationRunner(config.phase2(), DatagenRun(run_dir), get_domain, pool, executor=ex)
        helpers = ray_processes(stub.pid) if ex.remote else []
        requests0, stub0 = stub_requests(url), sum(cpu_of([stub]).values())
        helpers0 = cpu_of(helpers)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await runner.run(blueprints)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        helpers1 = cpu_of(helpers)
        requests = stub_requests(url) - requests0
        stub_cpu = sum(cpu_of([stub]).values()) - stub0
    helper_cpu = sum(helpers1[pid] - helpers0.get(pid, 0.0) for pid in helpers1)
    detail = f"driver {cpu:.1f}s + Ray workers/daemons {helper_cpu:.1f}s" if ex.remote else ""
    dialogues, steps = count_steps(run_dir)
    return Measurement(label, dialogues, steps, requests, wall, cpu + helper_cpu, stub_cpu, detail)


def start_stub(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    tasks = tmp / "tasks.json"
    tasks.write_text(json.dumps([b.model_dump(mode="json") for b in gold_blueprints()]))
    process = subprocess.Popen(
        [sys.executable, str(STUB), "--tasks", str(tasks)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def saturation(local: list[Measurement]) -> str:
    """The first concurrency whose steps/s is within 10% of the next one's, or one core busy."""
    for current, following in zip(local, local[1:], strict=False):
        if following.steps_per_s < 1.10 * current.steps_per_s or current.cores_used > 0.9:
            return (
                f"{current.label} ({current.steps_per_s:.0f} steps/s, {current.cores_used:.2f} cores of ours)"
            )
    last = local[-1]
    return f"not reached by {last.label} ({last.steps_per_s:.0f} steps/s, {last.cores_used:.2f} cores)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=480, help="dialogues per run at concurrency >= 64")
    parser.add_argument("--ray-workers", type=int, default=2)
    args = parser.parse_args()
    logging_quiet()
    tmp = Path(tempfile.mkdtemp(prefix="orchestration-"))
    process, url = start_stub(tmp)
    stub = psutil.Process(process.pid)
    blueprints = len(gold_blueprints())
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores; stub at {url}", flush=True)
    try:
        local = []
        for level in LOCAL_LEVELS:
            dialogues = min(args.dialogues, max(4 * level, 48))
            attempts = max(1, round(dialogues / blueprints))
            local.append(
                asyncio.run(run_once(f"local c={level}", url, stub, level, attempts, {"type": "local"}, tmp))
            )
            print_row(local[-1])
        best_local = max(local, key=lambda m: m.steps_per_s)
        attempts = max(1, round(args.dialogues / blueprints))
        same_c = asyncio.run(
            run_once("local c=64 again", url, stub, RAY_CONCURRENCY, attempts, {"type": "local"}, tmp)
        )
        print_row(same_c)
        ray = asyncio.run(
            run_once(
                f"ray {args.ray_workers} workers c={RAY_CONCURRENCY} each", url, stub, RAY_CONCURRENCY, attempts,
                {"type": "ray", "workers": args.ray_workers}, tmp,
            )
        )  # fmt: skip
        print_row(ray)
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    report(local, best_local, same_c, ray, args.ray_workers)
    return 0


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


HEADER = f"{'run':<28} {'dialogues':>9} {'steps':>7} {'requests':>8} {'wall s':>7} {'steps/s':>8} {'our CPU ms/step':>15} {'stub CPU ms/step':>16} {'our cores':>9}"


def print_row(m: Measurement) -> None:
    if not getattr(print_row, "header", False):
        print(HEADER)
        print_row.header = True  # type: ignore[attr-defined]
    print(
        f"{m.label:<28} {m.dialogues:>9} {m.steps:>7} {m.requests:>8} {m.wall_s:>7.2f} {m.steps_per_s:>8.0f} "
        f"{m.cpu_ms_per_step:>15.2f} {m.stub_ms_per_step:>16.2f} {m.cores_used:>9.2f}"
        + (f"   ({m.detail})" if m.detail else ""),
        flush=True,
    )


def report(
    local: list[Measurement], best: Measurement, same_c: Measurement, ray: Measurement, workers: int
) -> None:
    cpu_ms = best.cpu_ms_per_step  # where one process would run: its best steps/s
    overhead = ray.cpu_ms_per_step / same_c.cpu_ms_per_step
    speedup = ray.steps_per_s / best.steps_per_s
    requests_per_step = best.requests / best.steps
    capacity = 1000 / best.cpu_ms_per_step * requests_per_step  # requests/s one process can drive on one core
    print()
    print(f"one local process saturates at: {saturation(local)}")
    print(
        f"ray, {workers} workers: {ray.cpu_ms_per_step:.2f} CPU ms/step vs {same_c.cpu_ms_per_step:.2f} local at the "
        f"same concurrency = {overhead:.2f}x (target <= {TARGET_RAY_OVERHEAD}) "
        f"{'PASS' if overhead <= TARGET_RAY_OVERHEAD else 'FAIL'}"
    )
    print(
        f"ray, {workers} workers: {ray.steps_per_s:.0f} steps/s vs {best.steps_per_s:.0f} for the best local run = "
        f"{speedup:.2f}x (target >= {TARGET_RAY_SPEEDUP}) {'PASS' if speedup >= TARGET_RAY_SPEEDUP else 'FAIL'}"
    )
    print(
        f"servers one process keeps busy: {requests_per_step:.2f} LLM requests per step at {best.cpu_ms_per_step:.2f} "
        f"CPU ms/step = {capacity:.0f} requests/s per core = {capacity / SERVER_REQUESTS_PER_S:.1f} vLLM servers "
        f"of {SERVER_REQUESTS_PER_S:.0f} requests/s each (e.g. an 8B model on one H100, ~4,000 tok/s, ~200-token replies)"
    )
    verdict = "PASS" if cpu_ms <= TARGET_CPU_MS else "FAIL"
    print(f"RESULT orchestration_cpu_ms_per_step: {cpu_ms:.2f} (target <= {TARGET_CPU_MS:g}) {verdict}")


if __name__ == "__main__":
    sys.exit(main())
