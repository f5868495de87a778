"""The embedded engine starts from a plain shell, under memory pressure, and dies with its run.

Each test runs the installed `apigen-mt` in a subprocess with a plain environment (no
VLLM_CPU_KVCACHE_SPACE): the runtime sizes the KV cache itself. One engine at a time: these tests
start theirs one after another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from cli_runs import APIGEN_MT, ROOT, small_tau_args

from datagen.llm.engine_memory import GiB

ENGINE_UP_TIMEOUT_S = 600
RUN_TIMEOUT_S = 1200
ORPHAN_GRACE_S = 15.0  # the guard polls every 0.5 s and kills after 5 s more; the rest is slack
ENGINE_STARTED = "vLLM engine for"  # the runtime's log line once an engine is up


def _engine_processes(root: psutil.Process) -> list[psutil.Process]:
    return [p for p in root.children(recursive=True) if p.name().startswith("VLLM::")]


def _wait_for_engine(run: subprocess.Popen[bytes], log: Path) -> list[psutil.Process]:
    """The run's engine processes once its engine is up (the runtime has logged the start)."""
    deadline = time.monotonic() + ENGINE_UP_TIMEOUT_S
    root = psutil.Process(run.pid)
    while time.monotonic() < deadline:
        if run.poll() is not None:
            pytest.fail(
                f"the run exited with {run.returncode} before its engine was up:\n{log.read_text()[-3000:]}"
            )
        text = log.read_text(errors="replace")
        engines = _engine_processes(root)
        if ENGINE_STARTED in text and "started in" in text and engines:
            return engines
        time.sleep(1.0)
    pytest.fail(f"no engine up after {ENGINE_UP_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
@pytest.mark.vllm
def test_a_sigkilled_run_leaves_no_engine_and_its_resume_starts_one(
    plain_env: dict[str, str], tmp_path: Path
):
    """Before the guard, `kill -9` of `apigen-mt blueprints` left VLLM::EngineCore and VLLM::Worker
    running (re-parented to init) with 3.3 GiB for as long as anyone let them."""
    out = tmp_path / "run"
    command = [
        APIGEN_MT,
        "blueprints",
        "--config",
        "recipes/datagen/demo.yaml",
        "--limit",
        "1",
        "--out",
        str(out),
    ]
    log = tmp_path / "first.log"
    with log.open("w") as handle:
        run = subprocess.Popen(
            [*command, "--quiet"], stdout=handle, stderr=subprocess.STDOUT, env=plain_env, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
    engines: list[psutil.Process] = []
    try:
        engines = _wait_for_engine(run, log)
        assert any(p.name() == "VLLM::EngineCore" for p in engines), [p.name() for p in engines]
        run.send_signal(signal.SIGKILL)  # the run alone, as the OOM killer would
        run.wait(timeout=30)
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while any(_alive(p) for p in engines) and time.monotonic() < deadline:
            time.sleep(0.5)
        survivors = [f"{p.pid} {p.name()}" for p in engines if _alive(p)]
        assert not survivors, f"engine processes outlived the killed run by {ORPHAN_GRACE_S}s: {survivors}"
    finally:
        for process in engines:  # never leave an engine behind, whatever the assertions said
            if _alive(process):
                process.kill()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)

    resumed = subprocess.run(
        [*command, "--resume", "--quiet"], capture_output=True, text=True, env=plain_env, cwd=ROOT,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert ENGINE_STARTED in resumed.stderr and "started in" in resumed.stderr


def _hog_size(free: int) -> int:
    """A few GiB, but never so much that the engine could not fit beside it on this machine."""
    from datagen.llm.embedded import embedded_model_path
    from datagen.llm.engine_memory import ENGINE_RUNTIME_BYTES, model_footprint

    footprint = model_footprint(str(embedded_model_path()), "float32")  # the larger of the two dtypes
    engine_minimum = footprint.weights_bytes + ENGINE_RUNTIME_BYTES + footprint.kv_bytes_per_token * 8192
    return min(4 * GiB, (free - engine_minimum) // 2)


# A README command (the demo's BFCL step, one item); hermes: the embedded model's tool-call format.
BFCL_ONE_ITEM = (
    "eval bfcl --model embedded --prompt-mode hermes --categories simple_python --limit 1 --max-tokens 48"
)
HOG = """
import sys, time
size = int(sys.argv[1])
block = bytearray(size)
block[::4096] = b"\\x01" * len(range(0, size, 4096))  # touch every page: resident, not just reserved
print("held", flush=True)
time.sleep(3600)
"""


@pytest.mark.slow
@pytest.mark.vllm
def test_the_engine_starts_while_another_process_holds_memory(plain_env: dict[str, str], tmp_path: Path):
    """`apigen-mt eval bfcl --model embedded` (a README command) with GiBs taken by someone else: the
    KV cache is sized from what is left, so the engine starts and the run finishes."""
    from datagen.llm.engine_memory import free_memory_bytes

    size = _hog_size(free_memory_bytes())
    if size < GiB:
        pytest.skip(
            f"only {free_memory_bytes() / GiB:.1f} GiB free: no room for a 1 GiB hog beside the engine"
        )
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(size)], stdout=subprocess.PIPE, text=True)
    try:
        assert hog.stdout.readline().strip() == "held"
        assert psutil.Process(hog.pid).memory_info().rss >= size * 0.9
        done = subprocess.run(
            [APIGEN_MT, *BFCL_ONE_ITEM.split(), "--out", str(tmp_path / "bfcl")],
            capture_output=True,
            text=True,
            env=plain_env,
            cwd=ROOT,
            timeout=RUN_TIMEOUT_S,
        )
        assert hog.poll() is None  # it held its memory the whole time
    finally:
        hog.kill()
        hog.wait()
    assert done.returncode == 0, done.stderr[-4000:]
    assert "KV cache" in done.stderr and "simple_python" in done.stdout


def test_too_little_memory_is_one_line_before_any_engine_starts(plain_env: dict[str, str], tmp_path: Path):
    """A KV cache larger than the machine: the command stops before vLLM starts an engine process."""
    done = subprocess.run(
        [APIGEN_MT, *small_tau_args(tmp_path / "tau")],
        capture_output=True,
        text=True,
        env={**plain_env, "VLLM_CPU_KVCACHE_SPACE": "100000"},
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("apigen-mt eval: the vLLM engine needs"), done.stderr[-3000:]
    assert "is free; lower VLLM_CPU_KVCACHE_SPACE=100000" in last
    assert "EngineCore" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
