"""The orchestrator's own ceiling: agent+user steps per second and CPU per step of Phase 2, with the
model taken out of the picture.

    .venv/bin/python benchmarks/orchestration_scaling.py [--dialogues 2048] [--ray-total 256] [--pin auto]

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

1. the local executor at concurrency 1, 8, 64, 256, 1024 (twice as many dialogues as the concurrency,
   at least 48): steps/s, CPU ms per step from this process's own CPU clock (``time.process_time``),
   the stub's CPU per step, and the share of it Python's cyclic collector took;
2. equal total concurrency: the local executor at c=N (``--ray-total``) against the Ray executor with
   2 workers at c=N/2 each, the stub pinned to a core of its own and everything of ours (this process,
   Ray's daemons and workers) to the others where the machine has 3 cores or more (``--pin``). Ray's CPU
   per step is split into the driver, the workers and Ray's daemons;
3. from the per-step costs: how many vLLM servers of a stated throughput one process keeps busy, and
   what a cluster of Ray workers reaches (each worker a core, the driver one core).

Targets: <= 3 ms of orchestrator CPU per step locally at every concurrency; Ray at equal total
concurrency >= 1.3x the steps/s of one local process. Last lines:
``RESULT ray_vs_local_equal_concurrency: <x> (target >= 1.3) PASS|FAIL`` and
``RESULT orchestration_cpu_ms_per_step: <ms> (target <= 3) PASS|FAIL`` (the highest over the levels).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
TARGET_RAY_SPEEDUP = 1.3
LOCAL_LEVELS = (1, 8, 64, 256, 1024)
RAY_WORKERS = 2
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
    gc_s: float = 0.0  # of this process's CPU, in Python's cyclic collector
    driver_s: float = 0.0  # on Ray: this process
    workers_s: float = 0.0  # on Ray: the worker actors
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

    def ms_per_step(self, seconds: float) -> float:
        return 1000 * seconds / self.steps


class CollectorClock:
    """CPU seconds this process spends in Python's cyclic collector (its start/stop callbacks)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._began = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.total += time.process_time() - self._began


COLLECTOR = CollectorClock()


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
    """(dialogues, steps): a step is an agent turn or a user turn (the agent's fixed greeting is none).
    A duplicate success keeps no messages: it played as many steps as the success it repeats."""
    from datagen.rundir import DatagenRun, read_rows
    from datagen.simulate.runner import dialogue_signature

    run = DatagenRun(run_dir)
    dialogues = steps = 0
    by_signature: dict[str, int] = {}
    for path in (run.trajectories, run.failures):
        for row in read_rows(path):
            turns = [m for m in row["messages"][1:] if m["role"] in ("assistant", "user")]
            dialogues, steps = dialogues + 1, steps + len(turns) - 1  # the greeting
            by_signature[dialogue_signature(row["blueprint_id"], row["messages"])] = len(turns) - 1
    for row in read_rows(run.duplicates):
        dialogues, steps = dialogues + 1, steps + by_signature[row["duplicate_of"]]
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


def pin(pid: int, cores: set[int]) -> None:
    """``taskset`` for ``pid`` and, from now on, the processes it starts."""
    os.sched_setaffinity(pid, cores)


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
        workers = set(ex.worker_pids()) if ex.remote else set()
        requests0, stub0 = stub_requests(url), sum(cpu_of([stub]).values())
        helpers0 = cpu_of(helpers)
        gc0, cpu0, wall0 = COLLECTOR.total, time.process_time(), time.perf_counter()
        await runner.run(blueprints)
        wall = time.perf_counter() - wall0
        cpu, collector = time.process_time() - cpu0, COLLECTOR.total - gc0
        helpers1 = cpu_of(helpers)
        requests = stub_requests(url) - requests0
        stub_cpu = sum(cpu_of([stub]).values()) - stub0
    spent = {pid: helpers1[pid] - helpers0.get(pid, 0.0) for pid in helpers1}
    workers_cpu = sum(v for pid, v in spent.items() if pid in workers)
    daemons_cpu = sum(v for pid, v in spent.items() if pid not in workers)
    detail = (
        f"driver {cpu:.1f}s + workers {workers_cpu:.1f}s + Ray's daemons {daemons_cpu:.1f}s"
        if ex.remote
        else ""
    )
    dialogues, steps = count_steps(run_dir)
    return Measurement(
        label, dialogues, steps, requests, wall, cpu + workers_cpu + daemons_cpu, stub_cpu,
        gc_s=collector, driver_s=cpu, workers_s=workers_cpu, detail=detail,
    )  # fmt: skip


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
    parser.add_argument("--dialogues", type=int, default=2048, help="most dialogues per run")
    parser.add_argument("--ray-total", type=int, default=256, help="total concurrency of the Ray comparison")
    parser.add_argument(
        "--pin", choices=("auto", "yes", "no"), default="auto",
        help="stub on a core of its own, ours on the others (auto: with 3 cores or more)",
    )  # fmt: skip
    args = parser.parse_args()
    logging_quiet()
    tmp = Path(tempfile.mkdtemp(prefix="orchestration-"))
    process, url = start_stub(tmp)
    stub = psutil.Process(process.pid)
    cores = sorted(os.sched_getaffinity(0))
    pinned = len(cores) > 1 and (args.pin == "yes" or (args.pin == "auto" and len(cores) >= 3))
    blueprints = len(gold_blueprints())
    print(f"load average before: {os.getloadavg()}; {len(cores)} cores; stub at {url}", flush=True)
    try:
        local = []
        for level in LOCAL_LEVELS:
            dialogues = min(args.dialogues, max(2 * level, 48))
            attempts = max(1, round(dialogues / blueprints))
            local.append(
                asyncio.run(run_once(f"local c={level}", url, stub, level, attempts, {"type": "local"}, tmp))
            )
            print_row(local[-1])
        if pinned:  # before Ray starts: its daemons and workers inherit this process's cores
            pin(stub.pid, {cores[-1]})
            pin(os.getpid(), set(cores[:-1]))
        placement = (
            f"stub pinned to core {cores[-1]}, ours to {cores[:-1]}" if pinned
            else f"not pinned: {len(cores)} cores, a core for the stub would leave ours one"
        )  # fmt: skip
        print(f"equal total concurrency {args.ray_total}: {placement}", flush=True)
        total = args.ray_total
        attempts = max(1, round(min(args.dialogues, max(2 * total, 48)) / blueprints))
        same_c = asyncio.run(
            run_once(f"local c={total} ({'pinned' if pinned else 'again'})", url, stub, total, attempts,
                     {"type": "local"}, tmp)
        )  # fmt: skip
        print_row(same_c)
        ray = asyncio.run(
            run_once(
                f"ray {RAY_WORKERS} workers c={total // RAY_WORKERS} each", url, stub, total // RAY_WORKERS,
                attempts, {"type": "ray", "workers": RAY_WORKERS}, tmp,
            )
        )  # fmt: skip
        print_row(ray)
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    report(local, same_c, ray, placement)
    return 0


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


HEADER = (
    f"{'run':<30} {'dialogues':>9} {'steps':>7} {'requests':>8} {'wall s':>7} {'steps/s':>8} "
    f"{'our CPU ms/step':>15} {'of it GC':>8} {'stub CPU ms/step':>16} {'our cores':>9}"
)


def print_row(m: Measurement) -> None:
    if not getattr(print_row, "header", False):
        print(HEADER)
        print_row.header = True  # type: ignore[attr-defined]
    print(
        f"{m.label:<30} {m.dialogues:>9} {m.steps:>7} {m.requests:>8} {m.wall_s:>7.2f} {m.steps_per_s:>8.0f} "
        f"{m.cpu_ms_per_step:>15.2f} {m.ms_per_step(m.gc_s):>8.2f} {m.stub_ms_per_step:>16.2f} "
        f"{m.cores_used:>9.2f}" + (f"   ({m.detail})" if m.detail else ""),
        flush=True,
    )


def ray_shortfall(local: Measurement, ray: Measurement) -> str:
    """Why Ray did not reach the target, from what was measured: the cores it got, or its own cost."""
    more_cores = ray.cores_used / max(local.cores_used, 1e-9)
    if more_cores < TARGET_RAY_SPEEDUP:
        return (
            f"ours ran on {ray.cores_used:.2f} cores on Ray against {local.cores_used:.2f} locally ({more_cores:.2f}x): "
            f"the machine had no more to give ({len(os.sched_getaffinity(0))} cores, load average "
            f"{os.getloadavg()[0]:.1f}), so steps/s can only follow the CPU per step"
        )
    return (
        f"Ray got {more_cores:.2f}x the cores but spends {ray.cpu_ms_per_step:.2f} CPU ms per step against "
        f"{local.cpu_ms_per_step:.2f} locally"
    )


def report(local: list[Measurement], same_c: Measurement, ray: Measurement, placement: str) -> None:
    best = max(local, key=lambda m: m.steps_per_s)
    worst = max(local, key=lambda m: m.cpu_ms_per_step)
    speedup = ray.steps_per_s / same_c.steps_per_s
    requests_per_step = best.requests / best.steps
    capacity = 1000 / best.cpu_ms_per_step * requests_per_step  # requests/s one process can drive on one core
    print()
    print(f"one local process saturates at: {saturation(local)}")
    print(
        "CPU ms per step from c=1 to c=1024: "
        + " -> ".join(f"{m.cpu_ms_per_step:.2f}" for m in local)
        + f" (highest {worst.cpu_ms_per_step:.2f} at {worst.label})"
    )
    print(
        f"servers one process keeps busy: {requests_per_step:.2f} LLM requests per step at {best.cpu_ms_per_step:.2f} "
        f"CPU ms/step = {capacity:.0f} requests/s per core = {capacity / SERVER_REQUESTS_PER_S:.1f} vLLM servers "
        f"of {SERVER_REQUESTS_PER_S:.0f} requests/s each (e.g. an 8B model on one H100, ~4,000 tok/s, ~200-token replies)"
    )
    driver_ms, worker_ms = ray.ms_per_step(ray.driver_s), ray.ms_per_step(ray.workers_s)
    daemons_ms = ray.cpu_ms_per_step - driver_ms - worker_ms
    print(
        f"equal total concurrency ({placement}): ray {ray.steps_per_s:.0f} steps/s vs local {same_c.steps_per_s:.0f} = "
        f"{speedup:.2f}x; CPU ms/step local {same_c.cpu_ms_per_step:.2f}, ray {ray.cpu_ms_per_step:.2f} = driver "
        f"{driver_ms:.2f} + workers {worker_ms:.2f} + Ray's daemons {daemons_ms:.2f}; cores used: local "
        f"{same_c.cores_used:.2f}, ray {ray.cores_used:.2f} of {len(os.sched_getaffinity(0))} "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    if worker_ms > 0:  # each worker a core of its own (Ray's daemons counted with them), the driver one core
        driver_ceiling = 1000 / max(driver_ms, 1e-9)
        for workers in (2, 8, 32, 128):
            on_workers = workers * 1000 / (worker_ms + daemons_ms)
            ceiling = min(on_workers, driver_ceiling)
            print(
                f"  projection, {workers} workers on a core each and the driver on one: {ceiling:.0f} steps/s "
                f"({ceiling / same_c.steps_per_s:.1f}x this local run; bound by "
                f"{'the driver' if driver_ceiling < on_workers else 'the workers'})"
            )
    verdict = "PASS" if speedup >= TARGET_RAY_SPEEDUP else "FAIL"
    print(f"RESULT ray_vs_local_equal_concurrency: {speedup:.2f} (target >= {TARGET_RAY_SPEEDUP}) {verdict}")
    if verdict == "FAIL":
        print(f"  why: {ray_shortfall(same_c, ray)}")
    cpu_verdict = "PASS" if worst.cpu_ms_per_step <= TARGET_CPU_MS else "FAIL"
    print(
        f"RESULT orchestration_cpu_ms_per_step: {worst.cpu_ms_per_step:.2f} (highest of c=1..1024; target <= "
        f"{TARGET_CPU_MS:g}) {cpu_verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
