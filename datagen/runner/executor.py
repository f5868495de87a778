"""Where a batch's jobs run: the executor layer under :mod:`datagen.runner.batch`.

``executor: {type: local}`` (the default) runs every job in this process's event loop, as before.
``executor: {type: ray, workers: N}`` runs them on N Ray actors (:mod:`datagen.runner.ray_executor`):
each actor builds its own environments and model clients from the recipe (models by alias, one
:class:`~datagen.llm.pool.ModelPool` per actor) and runs the same asyncio code; every result comes
back to this process, whose :class:`~datagen.runner.batch.Batch` alone writes the run directory, so
resume, the funnel and the dataset card work the same under both.

A workload that can run elsewhere is a :class:`Workload`: plain data (the recipe's sections, never a
live model or an open file) with ``bind(models)``, which builds the job function in whichever
process runs it. Callers hand an executor the workload and how to build the same function locally::

    runner = executor.runner(AttemptWork(config), local=lambda: self.run_attempt)
    Batch(runner.run, concurrency=executor.in_flight(config.concurrency), ...)

``concurrency`` in a recipe is jobs in flight per worker process: one local process keeps that
many, N Ray workers keep N times that many in flight between them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

JobFn = Callable[[Any], Awaitable[Any]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class LocalExecutorConfig(_Strict):
    """Every job in this process's event loop (the default)."""

    type: Literal["local"] = Field("local", description="selects this executor")


class RayExecutorConfig(_Strict):
    """Jobs spread over Ray actors; results stream back to this process, which alone writes."""

    type: Literal["ray"] = Field("ray", description="selects this executor")
    workers: int = Field(2, ge=1, description="Ray actors, each with its own environments and model clients")
    address: str | None = Field(
        None,
        description="unset: $RAY_ADDRESS if set, else a new Ray instance on this machine (loopback); "
        "'auto': the cluster `ray start` runs on this node; 'ray://HOST:10001': Ray Client",
    )
    num_gpus_per_worker: float = Field(
        0,
        ge=0,
        description="GPUs each actor holds; with `backend: vllm` models each actor runs its own engine on them",
    )
    num_cpus_per_worker: float = Field(1, ge=0, description="CPUs Ray reserves per actor (scheduling only)")
    vllm: Literal["auto", "per_worker", "one_server"] = Field(
        "auto",
        description="how `backend: vllm` models are reached: per_worker = an in-process engine in every "
        "actor (on its GPUs); one_server = one OpenAI-compatible vLLM server per model that every actor "
        "calls; auto = per_worker when num_gpus_per_worker > 0, else one_server",
    )
    max_restarts: int = Field(
        3, ge=0, description="lost actors replaced, in all, before the run goes on with fewer"
    )

    def engines_per_worker(self) -> bool:
        """Whether each actor runs its own in-process engine for ``backend: vllm`` models."""
        if self.vllm == "auto":
            return self.num_gpus_per_worker > 0
        return self.vllm == "per_worker"


ExecutorConfig = Annotated[LocalExecutorConfig | RayExecutorConfig, Field(discriminator="type")]


class Models(Protocol):
    """The model clients of the process a job runs in, by recipe alias."""

    def get(self, alias: str) -> Any:
        """The model declared under ``alias``."""
        ...


class Workload(Protocol):
    """A batch's job code as plain data: picklable, bound to the models of the process that runs it."""

    def bind(self, models: Models) -> JobFn:
        """The job function, built with this process's models."""
        ...


class Runner(Protocol):
    """A bound workload as a batch sees it: ``run`` one payload; ``notify`` every copy of the job code
    (in every worker) of something the driver learned (Phase 1: a blueprint it accepted)."""

    async def run(self, payload: Any) -> Any:
        """Runs one job and returns its row."""
        ...

    def notify(self, message: Any) -> None:
        """Passes ``message`` to every copy of the job code."""
        ...


class LocalRunner:
    """A :class:`Runner` over a job function in this process."""

    def __init__(self, fn: JobFn) -> None:
        self._fn = fn

    async def run(self, payload: Any) -> Any:
        return await self._fn(payload)

    def notify(self, message: Any) -> None:
        notify = getattr(self._fn, "notify", None)
        if notify is not None:
            notify(message)


class LocalExecutor:
    """Jobs run in this process with the models the caller already has."""

    workers = 1
    remote = False

    def runner(self, work: Workload, local: Callable[[], JobFn]) -> Runner:
        """The job code to run: ``local()``, the function this process already built."""
        return LocalRunner(local())

    def in_flight(self, concurrency: int) -> int:
        """Jobs the batch keeps in flight: ``concurrency`` (one process)."""
        return concurrency


LOCAL = LocalExecutor()
Executor = Any  # LocalExecutor | datagen.runner.ray_executor.RayExecutor (Ray is imported only when used)


@contextlib.asynccontextmanager
async def open_executor(config: Any, models: Mapping[str, Any]) -> AsyncIterator[Any]:
    """The one factory on ``executor.type``: yields an executor for a run whose recipe declares
    ``models`` (alias -> ModelSpec); a Ray executor's actors and servers stop when the block ends."""
    if config is None or config.type == "local":
        yield LOCAL
        return
    if config.type == "ray":
        from datagen.runner.ray_executor import RayExecutor

        executor = RayExecutor(config, dict(models))
        # Ray relays its workers' and raylet's stdout to this process's stdout, which carries the
        # command's own output (JSON summaries): while Ray runs, that goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                await executor.start()
                yield executor
            finally:
                await executor.aclose()
        return
    raise ValueError(f"unknown executor type {config.type!r}; expected local or ray")


def add_executor_flags(parser: Any) -> None:
    """``--executor`` and ``--workers``, the same on every command that runs a batch."""
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default=None,
        help="where jobs run: local (this process) or ray (Ray actors); default: the recipe's executor, else local",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray actors (implies --executor ray); default 2"
    )


def executor_overrides(executor: str | None, workers: int | None) -> dict[str, Any]:
    """The flags as dotted recipe keys (``datagen.recipe.set_override``)."""
    from apigen_rules.errors import UsageError

    if workers is not None and workers < 1:
        raise UsageError(f"--workers: expected a number of Ray workers >= 1, found {workers}")
    if executor == "local":
        if workers is not None:
            raise UsageError("--workers applies to --executor ray; found it with --executor local")
        return {"executor": {"type": "local"}}
    if executor == "ray" or workers is not None:
        return {"executor.type": "ray", "executor.workers": workers}
    return {}
