"""Shared fixtures. Engine-backed ones are session-scoped so that a test session starts at most one
vLLM server, however many test files use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

VLLM_SERVER_START_TIMEOUT_S = 600.0
EMBEDDED_SERVED_NAME = "embedded"


# What a user's shell has: no VLLM_* tuning, no test settings. The cache variables only say where
# the prepared embedded model lives.
PLAIN_ENV_KEYS = ("PATH", "HOME", "LANG", "TMPDIR", "APIGEN_MT_CACHE", "XDG_CACHE_HOME", "HF_HOME")


@pytest.fixture
def plain_env() -> dict[str, str]:
    """The environment of a plain shell, for running the CLI the way a user does."""
    env = {key: os.environ[key] for key in PLAIN_ENV_KEYS if key in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The prepared embedded SmolLM2-135M-Instruct directory (prepared on first use)."""
    from datagen.llm.embedded import embedded_model_path

    return embedded_model_path()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


@pytest.fixture(scope="session")
def vllm_server(embedded_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible vLLM server on loopback serving the embedded model as "embedded",
    with the hermes tool parser on; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    from datagen.llm.vllm_backend import server_flags_for

    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm_server") / "server.log"
    server_args = [
        "--model", str(embedded_model),
        "--served-model-name", EMBEDDED_SERVED_NAME,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", "8192",
        "--enable-prefix-caching",
        "--scheduling-policy", "priority",
        "--enable-auto-tool-choice",
        "--tool-call-parser", "hermes",
    ]  # fmt: skip
    # The CPU settings (KV-cache size included) serve_vllm.sh and the in-process backend get.
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *server_args]
    command += server_flags_for(server_args)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + VLLM_SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"the vLLM server exited with code {process.returncode}; log tail:\n{_log_tail(log_path)}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the vLLM server was not healthy after {VLLM_SERVER_START_TIMEOUT_S:.0f}s:\n{_log_tail(log_path)}"
                )
            time.sleep(1.0)
        yield f"{base}/v1"
    finally:
        _stop_process_group(process)


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server and the engine process it spawned (same session, own group)."""
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
