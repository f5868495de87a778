"""What a batch's job code is, wherever it runs: the protocols between a workload and an executor.

A workload is plain data (the recipe's sections, never a live model or an open file) with
``bind(models)``, which builds the job function in whichever process runs it; an executor turns it
into a :class:`Runner` the batch calls (:mod:`datagen.runner.executor`, :mod:`datagen.runner.ray_executor`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

JobFn = Callable[[Any], Awaitable[Any]]


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
