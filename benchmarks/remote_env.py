"""What serving a domain and consuming it back costs: tool calls and Phase 2 against retail served over
MCP and OpenEnv on loopback, side by side with the same work in-process.

    .venv/bin/python benchmarks/remote_env.py [--calls 400] [--dialogues 240] [--concurrency 64]

1. Milliseconds per tool call through the toolkit's environment interface (what Phase 1, Phase 2 and the
   evaluations pay): a read call (``get_order_details``) repeated on one episode, in-process, against
   `apigen-mt envs serve retail --protocol mcp` (streamable HTTP, a handshake-era session, JSON
   responses) and over stdio, and against `--protocol openenv` (openenv-core's WebSocket session).
   Each served call crosses the process boundary, the protocol library on both sides and the toolkit's
   background loop.
2. Phase 2 steps per second (``SimulationRunner``, the code `apigen-mt generate` runs) on the retail
   gold tasks as blueprints, with tests/openai_stub.py as the model: a stand-in for an INFINITELY FAST
   engine, so the figures are the orchestrator's own work (benchmarks/orchestration_scaling.py uses the
   same stub and workload). A step is an agent or user turn. In-process retail against the same domain
   served over MCP and over OpenEnv, one after the other in this process; the servers run in their own
   processes on the same cores (their CPU is reported).

Targets: <= 2 ms per served call on loopback; served Phase 2 >= 0.8x the in-process steps/s. Last lines:
``RESULT remote_env_ms_per_call: <worst served protocol> (target <= 2) PASS|FAIL`` and
``RESULT remote_env_phase2_ratio: <worst served / in-process> (target >= 0.8) PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import orchestration_scaling as orchestration  # noqa: E402 - the stub, the workload and its step count

APIGEN_MT = str(Path(sys.executable).parent / "apigen-mt")
TARGET_MS = 2.0
TARGET_RATIO = 0.8


@contextlib.contextmanager
def served(protocol: str, tmp: Path) -> Iterator[tuple[str, psutil.Process]]:
    """`apigen-mt envs serve retail --protocol P` on a free port; yields (base URL, its process)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp / f"{protocol}.log").open("w")
    process = subprocess.Popen(
        [APIGEN_MT, "envs", "serve", "retail", "--protocol", protocol, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"{base}/health" if protocol == "openenv" else f"{base}/mcp", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the {protocol} server did not start: {(tmp / f'{protocol}.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield base, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def remote_domain(protocol: str, base: str) -> Any:
    from datagen.envs.registry import get_domain
    from datagen.recipe.remote_env import McpEnv, OpenEnvEnv

    if protocol == "mcp":
        return get_domain(McpEnv(source="mcp", name="retail-mcp", url=f"{base}/mcp"))
    if protocol == "mcp-stdio":
        command = [APIGEN_MT, "envs", "serve", "retail", "--protocol", "mcp", "--stdio"]
        return get_domain(
            McpEnv(source="mcp", name="retail-stdio", command=command, start={"type": "restart"})
        )
    return get_domain(OpenEnvEnv(source="openenv", name="retail-openenv", url=base))


def ms_per_call(
    domain: Any, calls: int, server_of: Callable[[], psutil.Process | None] = lambda: None
) -> tuple[float, float, float]:
    """(wall ms, our CPU ms, the server's CPU ms) per call, awaited as Phase 2's episode loop awaits it."""
    task = domain.gold_tasks[0]
    env = domain.env_for_task(task)
    order = next(a.arguments for t in domain.gold_tasks for a in t.actions if a.name == "get_order_details")
    call = {"name": "get_order_details", "arguments": order}

    async def timed() -> tuple[float, float, float]:
        for _ in range(20):  # warm: the connection, the server's first session, caches on both sides
            assert (await env.acall(call)).ok
        server = server_of()
        server0, cpu0, start = cpu_s(server), time.process_time(), time.perf_counter()
        for _ in range(calls):
            await env.acall(call)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        return 1000 * wall / calls, 1000 * cpu / calls, 1000 * (cpu_s(server) - server0) / calls

    found = asyncio.run(timed())
    env.close()
    return found


async def phase2(
    env_name: str, url: str, concurrency: int, attempts: int, out: Path
) -> tuple[int, float, float]:
    """(steps, wall s, this process's CPU s) of Phase 2 over the gold blueprints on ``env_name``."""
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.rundir import DatagenRun
    from datagen.simulate.runner import SimulationRunner

    config = orchestration.recipe(url, concurrency, attempts, {"type": "local"})
    blueprints = [b.model_copy(update={"env": env_name}) for b in orchestration.gold_blueprints()]
    async with ModelPool(config.used_specs()) as pool:
        warm = DatagenRun(out.with_name(out.name + "-warm"))
        await SimulationRunner(config.phase2(), warm, get_domain, pool).run(blueprints[:4])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await SimulationRunner(config.phase2(), DatagenRun(out), get_domain, pool).run(blueprints)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    _, steps = orchestration.count_steps(out)
    return steps, wall, cpu


def stdio_server() -> psutil.Process | None:
    """The stdio server process the remote domain started (a child of this one)."""
    found = [c for c in psutil.Process().children(recursive=True) if "--stdio" in " ".join(c.cmdline())]
    return found[0] if found else None


def cpu_s(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="tool calls timed per protocol")
    parser.add_argument("--dialogues", type=int, default=240, help="Phase 2 dialogues per run")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    orchestration.logging_quiet()
    tmp = Path(tempfile.mkdtemp(prefix="remote-env-"))
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    from datagen.envs.registry import get_domain

    stub_process, url = orchestration.start_stub(tmp)
    attempts = max(1, round(args.dialogues / len(orchestration.gold_blueprints())))
    calls: dict[str, tuple[float, float, float]] = {}
    runs: dict[str, tuple[int, float, float, float]] = {}
    try:
        calls["in-process"] = ms_per_call(get_domain("retail"), args.calls)
        steps, wall, cpu = asyncio.run(phase2("retail", url, args.concurrency, attempts, tmp / "in-process"))
        runs["in-process"] = (steps, wall, cpu, 0.0)
        stdio = remote_domain("mcp-stdio", "")
        calls["mcp (stdio)"] = ms_per_call(stdio, args.calls, stdio_server)
        for protocol in ("mcp", "openenv"):
            with served(protocol, tmp) as (base, server):
                domain = remote_domain(protocol, base)
                label = f"{protocol} (loopback HTTP)" if protocol == "mcp" else "openenv (loopback WebSocket)"
                calls[label] = ms_per_call(domain, args.calls, lambda server=server: server)
                server_cpu0 = cpu_s(server)
                steps, wall, cpu = asyncio.run(
                    phase2(domain.name, url, args.concurrency, attempts, tmp / protocol)
                )
                runs[f"served over {protocol}"] = (steps, wall, cpu, cpu_s(server) - server_cpu0)
    finally:
        stub_process.kill()
        stub_process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    print(f"\n{'tool call (Environment.acall)':<32} {'wall ms':>8} {'our CPU ms':>10} {'server CPU ms':>13}")
    for label, (ms, ours, theirs) in calls.items():
        print(f"{label:<32} {ms:>8.3f} {ours:>10.3f} {theirs:>13.3f}")
    print(f"\n{'phase 2 (stub engine, c=' + str(args.concurrency) + ')':<28} {'steps':>7} {'wall s':>7} {'steps/s':>8} "
          f"{'our CPU ms/step':>15} {'server CPU ms/step':>18} {'vs in-process':>13}")  # fmt: skip
    base_rate = runs["in-process"][0] / runs["in-process"][1]
    for label, (steps, wall, cpu, server) in runs.items():
        rate = steps / wall
        print(
            f"{label:<28} {steps:>7} {wall:>7.2f} {rate:>8.0f} {1000 * cpu / steps:>15.2f} "
            f"{1000 * server / steps:>18.2f} {rate / base_rate:>12.2f}x"
        )
    worst_ms = max(ms for label, (ms, _, _) in calls.items() if label != "in-process")
    worst_ratio = min((s / w) / base_rate for label, (s, w, _, _) in runs.items() if label != "in-process")
    print()
    print(
        f"RESULT remote_env_ms_per_call: {worst_ms:.2f} (target <= {TARGET_MS:g}) {'PASS' if worst_ms <= TARGET_MS else 'FAIL'}"
    )
    verdict = "PASS" if worst_ratio >= TARGET_RATIO else "FAIL"
    print(f"RESULT remote_env_phase2_ratio: {worst_ratio:.2f} (target >= {TARGET_RATIO:g}) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
