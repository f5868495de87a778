"""Starting `apigen-mt envs serve` the way a user does: a subprocess from a plain shell, on a free
loopback port, waited for until it answers, stopped (its whole process group) at the end."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from cli_runs import APIGEN_MT, ROOT
from conftest import _free_port as free_port
from conftest import _stop_process_group as stop_group


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the server did not answer {url} in {timeout_s:.0f}s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.3)


@contextlib.contextmanager
def served(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """``apigen-mt envs serve ARGS --port P``; yields ``http://127.0.0.1:P``."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [APIGEN_MT, "envs", "serve", *args, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        probe = f"{base}/health" if "openenv" in args else f"{base}/mcp"
        wait_http(probe, process, log)
        yield base
    finally:
        stop_group(process)
