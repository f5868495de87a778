"""Engine processes die with the process that started them, however it dies.

vLLM runs its engine in child processes it starts through ``multiprocessing`` (spawn on CPU):
``VLLM::EngineCore`` under the process that built the engine, and ``VLLM::Worker`` under the engine
core. A worker is told when its engine core dies (vLLM's death pipe, though it may not exit for a
while), but the engine core outlives a front end killed with SIGKILL (the OOM killer, a scheduler's
preemption): re-parented to init, it kept its memory and a share of a core until someone found it.

:func:`install_parent_guard` is a vLLM general plugin (entry point group ``vllm.general_plugins``,
which vLLM loads in its front end, its engine core and its workers). In a process that
``multiprocessing`` started it watches the parent pid; once the parent is gone it asks the process
to stop through vLLM's own SIGTERM handler, and kills it and its children if that has not worked
within :data:`GRACE_S`. A process that ``multiprocessing`` did not start (a front end, an API
server) is left alone, so a server started with ``nohup`` outlives its shell as it should.

A thread polling ``getppid`` rather than ``PR_SET_PDEATHSIG``: the kernel sends that signal when the
parent *thread* that forked exits, and engines are often built from a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

PLUGIN_NAME = "apigen_mt_engine_guard"
POLL_S = 0.5
GRACE_S = 2.0  # for vLLM's own SIGTERM shutdown, before the process and its children are killed
_installed = False


def install_parent_guard() -> None:
    """Start the parent watch in this process if ``multiprocessing`` started it (idempotent)."""
    global _installed
    parent = multiprocessing.parent_process()
    if _installed or parent is None or parent.pid is None:
        return
    _installed = True
    threading.Thread(
        target=_watch_parent, args=(parent.pid,), name="apigen-mt-parent-guard", daemon=True
    ).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    # Not the logging module: the process may be stuck holding a handler's lock.
    print(
        f"apigen-mt: parent process {parent_pid} is gone; stopping vLLM process {os.getpid()}",
        file=sys.stderr,
        flush=True,
    )
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    _kill_tree()


def _kill_tree() -> None:
    """SIGKILL this process's descendants (an engine core's workers), then itself. Measured: a worker
    mid-step ignored its closed death pipe and SIGTERM for over 10 s while its engine core waited."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    os.kill(os.getpid(), signal.SIGKILL)


def warn_if_guard_missing() -> None:
    """Log why engines would outlive a killed run when this plugin is not loaded by vLLM: the
    package was installed before the entry point existed, or ``VLLM_PLUGINS`` leaves it out."""
    from importlib.metadata import entry_points

    if not entry_points(group="vllm.general_plugins", name=PLUGIN_NAME):
        logger.warning(
            "the vLLM plugin %s is not registered, so a killed run can leave its engine processes "
            "behind; reinstall the package (`make setup`, or `pip install -e .`)",
            PLUGIN_NAME,
        )
        return
    allowed = os.environ.get("VLLM_PLUGINS")
    if allowed is not None and PLUGIN_NAME not in allowed.split(","):
        logger.warning(
            "VLLM_PLUGINS=%s leaves out %s, so a killed run can leave its engine processes behind; "
            "add it to the list",
            allowed,
            PLUGIN_NAME,
        )
