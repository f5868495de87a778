"""Where a batch's jobs run: the executor layer under :mod:`datagen.runner.batch`.

``executor: {type: local}`` (the default) runs every job in this process's event loop, as before.
``executor: {type: ray, workers: N}`` runs them on N Ray actors (:mod:`datagen.runner.ray_executor`):
each actor builds its own environments and model clients from the recipe (models by alias, one
:class:`~datagen.llm.pool.ModelPool` per actor) and runs the same asyncio code; every result comes
back to this process, whose :class:`~datagen.runner.batch.Batch` alone writes the run directory, so
resume, the funnel and the dataset card work the same under both.

The settings are the recipe's ``executor:`` section (:mod:`datagen.recipe.executor`); the protocols
between job code and executors are in :mod:`datagen.runner.jobs`; the ``--executor``/``--workers``
flags in :mod:`datagen.cli_flags`. A workload that can run elsewhere is a
:class:`~datagen.runner.jobs.Workload`: plain data (the recipe's sections, never a
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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from datagen.runner.jobs import JobFn, Runner, Workload

log = logging.getLogger(__name__)


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
