"""How Ray workers reach a recipe's ``backend: vllm`` models.

- **per_worker** (``executor.vllm: per_worker``, the default when ``num_gpus_per_worker > 0``): every
  actor builds the spec as written, an in-process vLLM engine on the GPUs Ray gave it: data parallel
  without a server.
- **one_server** (the default without GPUs per worker): one OpenAI-compatible vLLM server per model,
  started here as a Ray actor, and every worker's spec becomes ``backend: openai`` at that server,
  with the model's own tool format (the runtime renders tools and parses replies as the in-process
  backend does) and its label kept, so rows name the same model. On a CPU machine this is the only
  sensible choice: N engines would each take the weights, the runtime and a KV cache (see
  :mod:`datagen.llm.engine_memory`) and split the same cores; one engine batches every worker's
  requests.

Models already behind ``backend: openai`` (vLLM servers, vLLM's data-parallel deployment, a hosted
API) are shared by every actor as they are: list several ``base_urls`` to spread the load.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from datagen.llm.config import ModelSpec
from datagen.llm.pool import engine_key
from datagen.recipe.executor import RayExecutorConfig

log = logging.getLogger(__name__)

SERVER_START_TIMEOUT_S = 900.0
MAX_SERVER_SEQS = 256


def server_args(spec: ModelSpec, model_path: str, host: str, port: int, max_num_seqs: int) -> list[str]:
    """The api_server's command line for ``spec``: its context length, its engine_args as flags."""
    args = [
        "--model", model_path,
        "--served-model-name", spec.label,
        "--host", host,
        "--port", str(port),
        "--max-model-len", str(spec.max_model_len),
        "--max-num-seqs", str(max_num_seqs),
        "--enable-prefix-caching",
        "--disable-uvicorn-access-log",
    ]  # fmt: skip
    for key, value in spec.engine_args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False and value is not None:
            args += [flag, str(value)]
    return args


def served_spec(spec: ModelSpec, url: str, tool_format: str) -> ModelSpec:
    """What a worker's pool gets instead of ``spec``: the same model, over HTTP, under the same label."""
    return ModelSpec(
        model=spec.label,
        backend="openai",
        tool_format=tool_format,  # type: ignore[arg-type]
        base_urls=[url],
        max_concurrency=spec.max_concurrency,
        max_model_len=spec.max_model_len,
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries,
        name=spec.label,
    )


class ModelServer:
    """A Ray actor that runs one vLLM api_server process (its engine dies with it: engine guard)."""

    def __init__(self, spec: ModelSpec, max_num_seqs: int) -> None:
        os.dup2(2, 1)  # see JobWorker: the driver's stdout is its command's own
        self._spec = spec
        self._max_num_seqs = max_num_seqs
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> dict[str, str]:
        import ray

        from datagen.llm.engine_env import apply_engine_env

        apply_engine_env()
        spec = self._spec
        model_path = spec.resolved_model()
        host = ray.util.get_node_ip_address()
        port = _free_port(host)
        args = server_args(spec, model_path, host, port, self._max_num_seqs)
        args += _platform_flags(args)
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *args]
        log.info("ray: starting a vLLM server for %s at %s:%d", spec.label, host, port)
        self._process = subprocess.Popen(
            command, stdout=sys.stderr, stderr=sys.stderr, start_new_session=True
        )
        url = f"http://{host}:{port}"
        await _wait_healthy(self._process, url, spec.label)
        return {"url": f"{url}/v1", "tool_format": spec.resolved_tool_format(model_path)}

    async def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        for _ in range(60):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.5)
        os.killpg(process.pid, signal.SIGKILL)


def _platform_flags(args: list[str]) -> list[str]:
    """The CPU engine settings a server gets on a CPU (the one place they are decided); none on a GPU."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return []
    from datagen.llm.vllm_backend import server_flags_for

    return server_flags_for(args)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def _wait_healthy(process: subprocess.Popen[bytes], url: str, label: str) -> None:
    import httpx

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    async with httpx.AsyncClient() as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the vLLM server for {label} exited with code {process.returncode} while starting; "
                    "its log is above"
                )
            try:
                if (await client.get(f"{url}/health", timeout=2.0)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the vLLM server for {label} was not healthy after {SERVER_START_TIMEOUT_S:.0f}s"
                )
            await asyncio.sleep(1.0)


class ModelServers:
    """The servers of one run (``one_server``), one per distinct engine; stopped with the executor."""

    def __init__(self, config: RayExecutorConfig) -> None:
        self.config = config
        self._actors: list[Any] = []

    async def actor_specs(self, specs: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        """The specs every worker's pool is built from."""
        if self.config.engines_per_worker():
            return dict(specs)
        import ray

        served: dict[str, ModelSpec] = {}
        by_engine: dict[str, ModelSpec] = {}
        for alias, spec in specs.items():
            if spec.backend != "vllm":
                served[alias] = spec
                continue
            key = engine_key(spec)
            if key not in by_engine:
                seqs = min(spec.max_concurrency * self.config.workers, MAX_SERVER_SEQS)
                actor = ray.remote(ModelServer).options(num_cpus=0, max_concurrency=4).remote(spec, seqs)
                self._actors.append(actor)
                info = await actor.start.remote()
                by_engine[key] = served_spec(spec, info["url"], info["tool_format"])
                log.info("ray: workers reach %s at %s", spec.label, info["url"])
            served[alias] = by_engine[key]
        return served

    async def aclose(self) -> None:
        import ray

        for actor in self._actors:
            try:
                await actor.stop.remote()
            except Exception as exc:  # its process dies with the actor anyway (engine guard)
                log.warning("ray: stopping a vLLM server: %s", exc)
            ray.kill(actor)
        self._actors = []
