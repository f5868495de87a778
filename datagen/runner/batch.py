"""The batch layer: many independent jobs under a concurrency limit, each finished job recorded at once.

Phase 1 tasks, Phase 2 dialogues, τ trials and BFCL items all run here. The layer does not know what
a job is; it knows four rules:

- **At most ``concurrency`` jobs run at once**; jobs may be submitted while others run (Phase 2
  receives blueprints as Phase 1 accepts them), and jobs whose key is already done are skipped
  (resume: nothing done twice).
- **A finished job is recorded the moment it finishes** by the caller's ``record`` (which appends its
  row to the run directory), on the event loop, so rows never interleave.
- **One job's exception is one error row** (``record_error``, usually built with
  :func:`datagen.joberrors.error_outcome`), logged in one line; the other jobs go on. A row that
  cannot be written becomes an error row that can. Exceptions in ``stop_on`` are not the job's fault (a model server that stays down after the
  runtime's retries): they stop the batch, nothing is recorded for the jobs in flight, and the same
  exception is raised to the caller (so is a failure to record a row), so ``--resume`` runs those jobs again once the cause is fixed.
- **Nothing outlives the batch**: leaving the ``async with`` block, normally or by an exception or a
  cancellation, cancels and awaits every job before the caller closes its files.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from datagen.joberrors import error_message

log = logging.getLogger(__name__)

# Python's cyclic collector runs a young collection every YOUNG_COLLECTION allocations and a full one
# (every object alive) once enough objects have survived into the old generation. With hundreds of jobs
# in flight, every request's temporaries stay alive until its reply comes, so they all survive into the
# old generation and full collections come often and scan the whole run. Young collections much rarer
# (50,000 rather than CPython's 700) and everything alive when the first batch starts left out of
# full collections (``gc.freeze``, as vLLM does after start-up) keep the collector's share of a step
# flat: benchmarks/orchestration_scaling.py measured 0.7 CPU ms a step in the collector at concurrency 1
# and 2.4 at 1024 with CPython's settings.
YOUNG_COLLECTION = 50_000
_collector_users = 0
_collector_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def collector_for_many_jobs() -> Any:
    """Collector settings for a process that runs many jobs at once, while any batch runs (see
    ``YOUNG_COLLECTION``); a threshold the process set higher itself is kept."""
    global _collector_users, _collector_saved
    if _collector_users == 0:
        _collector_saved = gc.get_threshold()
        young, middle, old = _collector_saved
        gc.set_threshold(max(young, YOUNG_COLLECTION), middle, old)
        gc.freeze()
    _collector_users += 1
    try:
        yield
    finally:
        _collector_users -= 1
        if _collector_users == 0 and _collector_saved is not None:
            gc.set_threshold(*_collector_saved)
            gc.unfreeze()


Payload = TypeVar("Payload")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Job(Generic[Payload]):
    """One unit of work: a key unique within its run (what resume skips and error rows name) and the
    payload the batch's ``run`` function receives (plain data, so another process can run it)."""

    key: str
    payload: Payload


@dataclass
class BatchCounts:
    """What a batch has done so far (the progress line and the command's summary read it)."""

    submitted: int = 0
    skipped: int = 0  # done in an earlier session
    finished: int = 0  # recorded, errors included
    errors: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet recorded."""
        return self.submitted - self.finished

    @property
    def queued(self) -> int:
        """Submitted jobs that wait for a free slot."""
        return self.pending - self.running

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data."""
        return {
            "submitted": self.submitted,
            "skipped": self.skipped,
            "finished": self.finished,
            "errors": self.errors,
            "running": self.running,
            "elapsed_s": time.monotonic() - self.started,
        }


class Batch(Generic[Payload, Out]):
    """Runs :class:`Job` s with ``run(payload)``; use as ``async with Batch(...) as batch``."""

    def __init__(
        self,
        run: Callable[[Payload], Awaitable[Out]],
        *,
        concurrency: int,
        record: Callable[[Job[Payload], Out], Any],
        record_error: Callable[[Job[Payload], BaseException], Any],
        done: Collection[str] = frozenset(),
        stop_on: tuple[type[BaseException], ...] = (),
        on_progress: Callable[[BatchCounts], None] | None = None,
        name: str = "batch",
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"expected concurrency >= 1, found {concurrency}")
        self._run = run
        self._record = record
        self._record_error = record_error
        self._done = done
        self._stop_on = stop_on
        self._on_progress = on_progress
        self.name = name
        self.concurrency = concurrency
        self.counts = BatchCounts()
        self._queue: asyncio.Queue[Job[Payload]] = asyncio.Queue()
        self._keys: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._failure: BaseException | None = None
        self._collector = contextlib.ExitStack()

    async def __aenter__(self) -> Batch[Payload, Out]:
        self._collector.enter_context(collector_for_many_jobs())
        self._workers = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.concurrency)
        ]
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                await self.wait()
        finally:
            await self.aclose()

    def submit(self, job: Job[Payload]) -> bool:
        """Queues ``job``; False (and nothing queued) when its key is done or already submitted."""
        if self._failure is not None:
            raise self._failure
        if job.key in self._done or job.key in self._keys:
            if job.key in self._done:
                self.counts.skipped += 1
            return False
        self._keys.add(job.key)
        self.counts.submitted += 1
        self._idle.clear()
        self._queue.put_nowait(job)
        return True

    def submit_all(self, jobs: Iterable[Job[Payload]]) -> int:
        """Queues every job of ``jobs`` (see :meth:`submit`); returns how many were queued."""
        return sum(self.submit(job) for job in jobs)

    async def wait(self) -> BatchCounts:
        """Until every job submitted so far is recorded; more may be submitted afterwards."""
        await self._idle.wait()
        if self._failure is not None:
            raise self._failure
        return self.counts

    async def aclose(self) -> None:
        """Cancels every worker and awaits them (what runs is not recorded; resume runs it again)."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._collector.close()

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            self.counts.running += 1
            try:
                outcome = await self._run(job.payload)
            except asyncio.CancelledError:
                raise
            except self._stop_on as exc:
                self._stop(exc)
                return
            except Exception as exc:
                log.warning(
                    "%s: job %s failed and is kept as an error row: %s",
                    self.name,
                    job.key,
                    error_message(exc),
                )
                if not self._finish(job, lambda job=job, exc=exc: self._record_error(job, exc), error=True):
                    return
            else:
                if not self._finish(
                    job, lambda job=job, outcome=outcome: self._record(job, outcome), error=False
                ):
                    return

    def _finish(self, job: Job[Payload], write: Callable[[], Any], *, error: bool) -> bool:
        """Records one finished job; a row that cannot be written becomes an error row that can; False
        when not even that can be written (the run directory is gone or full) and the batch stops."""
        self.counts.running -= 1
        try:
            try:
                write()
            except Exception as exc:
                if error:
                    raise
                log.warning(
                    "%s: the row of job %s cannot be written (%s); an error row replaces it",
                    self.name,
                    job.key,
                    error_message(exc),
                )
                self._record_error(job, exc)
                error = True
            self.counts.finished += 1
            self.counts.errors += error
            if self._on_progress is not None:
                self._on_progress(self.counts)
        except Exception as exc:  # the run directory cannot take the row: nothing else can go on
            self._stop(exc)
            return False
        if self.counts.pending == 0:
            self._idle.set()
        return True

    def _stop(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
            log.error("%s stops: %s", self.name, error_message(exc))
        self._idle.set()
        current = asyncio.current_task()
        for task in self._workers:
            if task is not current:
                task.cancel()


async def run_jobs(
    run: Callable[[Payload], Awaitable[Out]],
    jobs: Iterable[Job[Payload]],
    **options: Any,
) -> BatchCounts:
    """Every job of ``jobs`` through one :class:`Batch` (see its options); returns the counts."""
    async with Batch(run, **options) as batch:
        batch.submit_all(jobs)
        return await batch.wait()
