"""The Ray executor: a batch's jobs on N Ray actors, results streamed back to the one writer.

- **Actors** (:class:`JobWorker`): each holds one :class:`~datagen.llm.pool.ModelPool` built from the
  recipe's model specs and every workload bound to it (Phase 1 and Phase 2 of one ``generate`` share
  the actors and so their engines). An actor is an asyncio actor: it runs as many jobs at once as the
  driver sends it, on one event loop, exactly as the local executor does.
- **Dispatch**: the driver's :class:`~datagen.runner.batch.Batch` keeps ``concurrency x workers``
  jobs in flight and sends each to the actor with the fewest in flight. A job's own exception comes
  back as itself (an error row, or an outage that stops the batch); its result comes back as a value
  and only the driver records it.
- **Lost actors**: a job whose actor dies (killed, its node gone, out of memory) runs again on
  another actor; it was never recorded, so it is in the output once. The dead actor is replaced,
  ``max_restarts`` times in all. A job that has lost :data:`MAX_JOB_LOSSES` actors is one error row,
  not a fourth casualty. With no actor left the batch stops like an outage: ``--resume`` goes on.
- **Models**: every alias reaches its model as the spec says (an OpenAI-compatible ``base_urls``
  list is shared by all actors). A ``backend: vllm`` model is either an in-process engine in every
  actor on its ``num_gpus_per_worker`` GPUs, or one vLLM server every actor calls
  (:mod:`datagen.runner.ray_models`), as ``executor.vllm`` decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datagen.llm.base import ModelUnavailableError
from datagen.recipe.executor import RayExecutorConfig
from datagen.runner.jobs import JobFn, Workload

log = logging.getLogger(__name__)

MAX_JOB_LOSSES = 3  # actors one job may see die under it before it is an error row
READY_TIMEOUT_S = 600.0  # an actor's start: imports, and nothing heavier (engines start with the first job)
# Ray's own environment for a local instance: every address on loopback (Ray otherwise binds and
# dials the machine's outward address even when it runs alone).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class WorkersLost(ModelUnavailableError):
    """Every Ray worker is gone: the batch stops as for an unreachable model, and --resume goes on."""


class JobLostWorkers(RuntimeError):
    """One job whose workers kept dying under it (it is kept as an error row)."""


class JobWorker:
    """The Ray actor (wrapped by ``ray.remote`` in :func:`_actor_class`)."""

    def __init__(self, specs: dict[str, Any]) -> None:
        # The driver's stdout carries its command's own output (a JSON summary); Ray relays an actor's
        # stdout there, so everything this process prints goes to stderr.
        os.dup2(2, 1)
        from datagen.llm.engine_env import apply_engine_env
        from datagen.llm.pool import ModelPool

        apply_engine_env()
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        for chatty in ("httpx", "httpx2", "httpcore"):  # a line per request, from every worker
            logging.getLogger(chatty).setLevel(logging.WARNING)
        from datagen.runner.batch import collector_for_many_jobs

        # The driver's batch sets the collector for many jobs in its own process; an actor runs as many.
        self._collector = contextlib.ExitStack()
        self._collector.enter_context(collector_for_many_jobs())
        self._pool = ModelPool(specs)
        self._jobs: dict[str, JobFn] = {}

    async def ready(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node": ray.util.get_node_ip_address()}

    async def add(self, name: str, work: Workload, messages: list[Any]) -> None:
        job = self._jobs[name] = work.bind(self._pool)
        for message in messages:
            _notify(job, message)

    async def run(self, name: str, payload: Any) -> Any:
        return await self._jobs[name](payload)

    async def notify(self, name: str, message: Any) -> None:
        _notify(self._jobs[name], message)

    async def close(self) -> None:
        await self._pool.aclose()
        self._collector.close()


def _notify(job: JobFn, message: Any) -> None:
    notify = getattr(job, "notify", None)
    if notify is not None:
        notify(message)


@dataclass
class _Slot:
    index: int
    handle: Any = None
    in_flight: int = 0
    live: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def _actor_class(config: RayExecutorConfig) -> Any:
    import ray

    return ray.remote(JobWorker).options(
        num_cpus=config.num_cpus_per_worker,
        num_gpus=config.num_gpus_per_worker,
        max_concurrency=100_000,  # the driver bounds what is in flight; control calls never queue
        max_restarts=0,  # the executor replaces lost actors itself, re-adding their workloads
    )


def init_ray(config: RayExecutorConfig) -> bool:
    """Connects to Ray (or starts it on loopback); True when this call started it (and so stops it)."""
    address = config.address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        os.environ.update(LOOPBACK_ENV)  # read when Ray is first imported, so before that
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address is None:
        needed = config.workers * config.num_cpus_per_worker
        options["num_cpus"] = max(os.cpu_count() or 1, int(needed + 0.999))
        ray.init(**options)
    else:
        ray.init(address=address, **options)
    return True


class RayExecutor:
    remote = True

    def __init__(self, config: RayExecutorConfig, specs: dict[str, Any]) -> None:
        self.config = config
        self.workers = config.workers
        self._specs = specs
        self._slots: list[_Slot] = []
        self._works: dict[str, tuple[Any, list[Any]]] = {}  # name -> (object ref of the work, notices)
        self._names = itertools.count()
        self._restarts_left = config.max_restarts
        self._changed = asyncio.Condition()
        self._started_ray = False
        self._servers: Any = None

    def in_flight(self, concurrency: int) -> int:
        return concurrency * self.workers

    def worker_pids(self) -> list[int]:
        """The process id of each live worker (on its own node)."""
        return [slot.info["pid"] for slot in self._slots if slot.live]

    async def start(self) -> None:
        from datagen.runner.ray_models import ModelServers

        self._started_ray = init_ray(self.config)
        self._check_resources()
        self._servers = ModelServers(self.config)
        try:
            specs = await self._servers.actor_specs(self._specs)
        except Exception as exc:  # a server that cannot start (memory, a bad engine argument): one line
            from ray.exceptions import RayError

            cause = _cause(exc) if isinstance(exc, RayError) else exc
            raise ModelUnavailableError(
                f"a vLLM server for the Ray workers did not start: {_first_line(cause)}"
            ) from None
        self._actor = _actor_class(self.config)
        self._actor_specs = specs
        self._slots = [_Slot(i) for i in range(self.workers)]
        await asyncio.gather(*(self._launch(slot) for slot in self._slots))
        nodes = sorted({slot.info.get("node", "?") for slot in self._slots})
        log.info("ray: %d workers ready on %s", self.workers, ", ".join(nodes))

    def _check_resources(self) -> None:
        import ray

        total = ray.cluster_resources()
        for resource, per_worker in (
            ("CPU", self.config.num_cpus_per_worker),
            ("GPU", self.config.num_gpus_per_worker),
        ):
            needed = per_worker * self.workers
            if needed > total.get(resource, 0) + 1e-9:
                raise ValueError(
                    f"executor: {self.workers} Ray workers need {needed:g} {resource} in all "
                    f"({per_worker:g} each); the cluster has {total.get(resource, 0):g}. Lower "
                    f"executor.workers or num_{resource.lower()}s_per_worker, or add nodes"
                )

    async def _launch(self, slot: _Slot) -> None:
        slot.handle = self._actor.remote(self._actor_specs)
        slot.info = await asyncio.wait_for(_await(slot.handle.ready.remote()), READY_TIMEOUT_S)
        for name, (ref, messages) in self._works.items():
            await _await(slot.handle.add.remote(name, ref, list(messages)))
        slot.in_flight, slot.live = 0, True
        async with self._changed:
            self._changed.notify_all()

    def runner(self, work: Workload, local: Callable[[], JobFn]) -> RemoteRunner:
        import ray

        name = f"work{next(self._names)}"
        self._works[name] = (ray.put(work), [])
        return RemoteRunner(self, name)

    async def register(self, name: str) -> None:
        ref, messages = self._works[name]
        await asyncio.gather(
            *(_await(s.handle.add.remote(name, ref, list(messages))) for s in self._slots if s.live)
        )

    def notify(self, name: str, message: Any) -> None:
        self._works[name][1].append(message)  # a replacement actor gets every notice again
        for slot in self._slots:
            if slot.live:
                slot.handle.notify.remote(name, message)

    async def acquire(self) -> _Slot:
        """The live actor with the fewest jobs in flight; waits while lost ones are being replaced."""
        async with self._changed:
            while True:
                live = [s for s in self._slots if s.live]
                if live:
                    slot = min(live, key=lambda s: s.in_flight)
                    slot.in_flight += 1
                    return slot
                if not self._replacing():
                    raise WorkersLost(
                        f"every Ray worker is lost ({self.workers} started, {self.config.max_restarts} "
                        "replaced); finished jobs are saved: check the cluster and rerun with --resume"
                    )
                await self._changed.wait()

    def _replacing(self) -> bool:
        return any(s.handle is not None and not s.live for s in self._slots)

    async def lost(self, slot: _Slot, handle: Any, exc: BaseException) -> None:
        """``handle`` died under a job: the first job to notice takes it out and replaces it."""
        if slot.handle is not handle or not slot.live:
            return
        slot.live = False
        log.warning("ray: worker %d (%s) is lost: %s", slot.index, slot.info, _first_line(exc))
        if self._restarts_left <= 0:
            slot.handle = None
            async with self._changed:
                self._changed.notify_all()
            return
        self._restarts_left -= 1
        asyncio.get_running_loop().create_task(self._replace(slot))

    async def _replace(self, slot: _Slot) -> None:
        try:
            await self._launch(slot)
            log.info("ray: worker %d replaced (%s)", slot.index, slot.info)
        except Exception as exc:  # a replacement that cannot start leaves the others to go on
            log.warning("ray: worker %d could not be replaced: %s", slot.index, exc)
            slot.handle = None
            async with self._changed:
                self._changed.notify_all()

    async def aclose(self) -> None:
        import ray

        try:
            if ray.is_initialized():
                closing = [s.handle.close.remote() for s in self._slots if s.live]
                with _quiet_ray_errors():
                    await asyncio.wait_for(asyncio.gather(*map(_await, closing)), 60)
                for slot in self._slots:
                    if slot.handle is not None:
                        ray.kill(slot.handle)
                if self._servers is not None:
                    await self._servers.aclose()
        finally:
            self._slots = []
            if self._started_ray and ray.is_initialized():
                ray.shutdown()


class RemoteRunner:
    """One workload on the executor's actors, as a :class:`~datagen.runner.jobs.Runner`."""

    def __init__(self, executor: RayExecutor, name: str) -> None:
        self._executor = executor
        self._name = name
        self._registered: asyncio.Task[None] | None = None

    async def run(self, payload: Any) -> Any:
        from ray.exceptions import RayActorError, RayTaskError

        if self._registered is None:
            self._registered = asyncio.get_running_loop().create_task(self._executor.register(self._name))
        await asyncio.shield(self._registered)
        for _ in range(MAX_JOB_LOSSES):
            slot = await self._executor.acquire()
            handle = slot.handle
            ref = handle.run.remote(self._name, payload)
            try:
                return await ref
            except RayTaskError as exc:  # the job's own exception, raised again as itself
                raise _cause(exc) from None
            except RayActorError as exc:
                await self._executor.lost(slot, handle, exc)
            except asyncio.CancelledError:
                _cancel(ref)
                raise
            finally:
                if slot.handle is handle:  # a replacement starts its own count
                    slot.in_flight -= 1
        raise JobLostWorkers(f"{MAX_JOB_LOSSES} Ray workers died while running this job; it is not retried")

    def notify(self, message: Any) -> None:
        self._executor.notify(self._name, message)


def _cause(exc: Any) -> BaseException:
    """The exception a job raised, out of Ray's wrapper (a traceback's last line says what it was)."""
    from ray.exceptions import RayTaskError

    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    lines = str(exc).strip().splitlines()
    if not lines:
        return RuntimeError(repr(exc))
    return RuntimeError(lines[-1] if isinstance(exc, RayTaskError) else lines[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cancel(ref: Any) -> None:
    import ray

    try:
        ray.cancel(ref)
    except Exception as exc:  # the actor may be gone already; nothing is recorded for the job anyway
        log.debug("ray: cancelling a job failed: %s", exc)


async def _await(ref: Any) -> Any:
    return await ref


class _quiet_ray_errors:
    """Closing actors that already died is not an error worth a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc is None:
            return False
        from ray.exceptions import RayError

        if isinstance(exc, RayError | asyncio.TimeoutError):
            log.warning("ray: closing the workers: %s", str(exc).splitlines()[0] if str(exc) else repr(exc))
            return True
        return False
