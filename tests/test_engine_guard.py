"""Engine processes die with the process that started them, SIGKILL included.

The guard is a vLLM general plugin; here it runs in real ``multiprocessing`` children started the
way vLLM starts its engine core (spawn), under a parent that is then killed with SIGKILL. The
end-to-end check with a real engine under `apigen-mt blueprints` is in test_engine_start.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path

import psutil
import pytest

from datagen.llm import engine_guard

ROOT = Path(__file__).resolve().parents[1]

# A "run" that spawns one child the way vLLM spawns EngineCore, prints the child's pid, then waits.
RUN = textwrap.dedent(
    """
    import multiprocessing, signal, sys, time

    def child(ignore_term):
        if ignore_term:  # a process stuck somewhere that does not honour SIGTERM
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        from datagen.llm.engine_guard import install_parent_guard
        install_parent_guard()
        time.sleep(600)

    if __name__ == "__main__":
        proc = multiprocessing.get_context("spawn").Process(target=child, args=(sys.argv[1] == "1",))
        proc.start()
        print(proc.pid, flush=True)
        time.sleep(600)
    """
)


def _wait_gone(pid: int, within_s: float) -> float | None:
    """Seconds until ``pid`` is gone (or a zombie), or None if it outlived ``within_s``."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return time.monotonic() - started
        except psutil.NoSuchProcess:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


@pytest.mark.parametrize("ignore_term", [False, True], ids=["stops-on-sigterm", "killed-after-grace"])
def test_a_spawned_child_dies_when_its_parent_is_sigkilled(tmp_path: Path, ignore_term: bool):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    run = subprocess.Popen(
        [sys.executable, str(script), "1" if ignore_term else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    child_pid = None
    try:
        child_pid = int(run.stdout.readline())
        time.sleep(2.0)  # the child has imported the guard and is watching
        assert psutil.pid_exists(child_pid)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        budget = engine_guard.POLL_S + (engine_guard.GRACE_S if ignore_term else 0) + 5.0
        gone_after = _wait_gone(child_pid, budget)
        assert gone_after is not None, f"the child {child_pid} outlived its SIGKILLed parent by {budget}s"
    finally:
        if run.poll() is None:
            run.kill()
        if child_pid is not None and psutil.pid_exists(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_a_process_multiprocessing_did_not_start_is_left_alone():
    """A front end or an API server (started from a shell, maybe with nohup) must outlive its shell."""
    code = (
        "import threading; from datagen.llm.engine_guard import install_parent_guard; "
        "install_parent_guard(); print(sorted(t.name for t in threading.enumerate()))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "apigen-mt-parent-guard" not in done.stdout


def test_vllm_loads_the_guard_as_a_general_plugin():
    """Registered in pyproject's entry points, so vLLM runs it in its engine core and workers."""
    from vllm.plugins import DEFAULT_PLUGINS_GROUP, load_plugins_by_group

    assert entry_points(group=DEFAULT_PLUGINS_GROUP, name=engine_guard.PLUGIN_NAME)
    loaded = load_plugins_by_group(DEFAULT_PLUGINS_GROUP)
    assert loaded[engine_guard.PLUGIN_NAME] is engine_guard.install_parent_guard
