"""The batch layer's contract: a concurrency ceiling, one row per finished job, resume skips, one
error row per failing job, outages stop the batch, and nothing outlives it."""

from __future__ import annotations

import asyncio

import pytest

from datagen.runner.batch import Batch, Job, run_jobs


class Outage(RuntimeError):
    pass


def _collector():
    rows: list[tuple[str, object]] = []
    return (
        rows,
        (lambda job, out: rows.append((job.key, out))),
        (lambda job, exc: rows.append((job.key, f"error: {exc}"))),
    )


def test_every_job_is_recorded_once_and_concurrency_is_a_ceiling():
    running, peak = 0, 0

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (n % 5))
        running -= 1
        return n * n

    rows, record, record_error = _collector()
    counts = asyncio.run(
        run_jobs(
            work,
            [Job(f"j{n}", n) for n in range(50)],
            concurrency=7,
            record=record,
            record_error=record_error,
        )
    )
    assert sorted(rows) == sorted((f"j{n}", n * n) for n in range(50))
    assert peak == 7 and counts.finished == 50 and counts.errors == 0


def test_a_failing_job_is_one_error_row_and_the_others_go_on():
    async def work(n: int) -> int:
        if n == 3:
            raise ValueError("\ud800 cannot be encoded")
        return n

    rows, record, record_error = _collector()
    counts = asyncio.run(
        run_jobs(
            work, [Job(str(n), n) for n in range(6)], concurrency=2, record=record, record_error=record_error
        )
    )
    assert counts.errors == 1 and counts.finished == 6
    assert dict(rows)["3"].startswith("error: ") and [k for k, _ in rows].count("3") == 1


def test_done_keys_are_skipped_and_repeated_keys_run_once():
    seen: list[int] = []

    async def work(n: int) -> int:
        seen.append(n)
        return n

    rows, record, record_error = _collector()
    jobs = [Job(str(n), n) for n in range(5)] + [Job("4", 4)]
    counts = asyncio.run(
        run_jobs(work, jobs, concurrency=3, record=record, record_error=record_error, done={"0", "2"})
    )
    assert sorted(seen) == [1, 3, 4] and counts.skipped == 2 and counts.submitted == 3


def test_an_outage_stops_the_batch_cancels_the_jobs_in_flight_and_records_nothing_for_them():
    started: list[int] = []
    cancelled: list[int] = []

    async def work(n: int) -> int:
        started.append(n)
        if n == 0:
            await asyncio.sleep(0.01)
            raise Outage("server down")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    rows, record, record_error = _collector()

    async def main() -> None:
        await run_jobs(
            work,
            [Job(str(n), n) for n in range(4)],
            concurrency=4,
            record=record,
            record_error=record_error,
            stop_on=(Outage,),
        )

    with pytest.raises(Outage, match="server down"):
        asyncio.run(main())
    assert rows == [] and sorted(cancelled) == [1, 2, 3]


def test_a_row_that_cannot_be_written_stops_the_batch_with_that_error():
    async def work(n: int) -> int:
        return n

    def record(job, out):
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        asyncio.run(
            run_jobs(
                work, [Job(str(n), n) for n in range(3)], concurrency=1, record=record, record_error=record
            )
        )


def test_jobs_submitted_while_others_run_are_run_and_waited_for():
    async def work(n: int) -> int:
        await asyncio.sleep(0.001)
        return n

    rows, record, record_error = _collector()

    async def main() -> None:
        async with Batch(work, concurrency=2, record=record, record_error=record_error) as batch:
            batch.submit(Job("a", 1))
            await batch.wait()
            assert rows == [("a", 1)]
            for n in range(5):
                batch.submit(Job(f"b{n}", n))
                await asyncio.sleep(0)

    asyncio.run(main())
    assert len(rows) == 6


def test_cancelling_the_caller_cancels_and_awaits_every_job_before_the_block_ends():
    alive: set[int] = set()
    after_block: list[set[int]] = []

    async def work(n: int) -> int:
        alive.add(n)
        try:
            await asyncio.sleep(10)
        finally:
            alive.discard(n)
        return n

    rows, record, record_error = _collector()

    async def run() -> None:
        try:
            async with Batch(work, concurrency=3, record=record, record_error=record_error) as batch:
                batch.submit_all(Job(str(n), n) for n in range(6))
                await asyncio.sleep(10)
        finally:
            after_block.append(set(alive))

    async def main() -> None:
        task = asyncio.create_task(run())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())
    assert after_block == [set()] and rows == []


def test_the_collector_runs_rarely_while_any_batch_runs_and_is_restored_after(monkeypatch):
    import gc

    from datagen.runner import batch as batch_module

    saved = gc.get_threshold()
    monkeypatch.setattr(batch_module, "YOUNG_COLLECTION", 40_000)
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[tuple[int, int, int], int]] = []

    async def work(n: int) -> int:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        await asyncio.sleep(0)
        return n

    async def two_batches() -> None:
        rows, record, record_error = _collector()
        async with Batch(work, concurrency=2, record=record, record_error=record_error) as first:
            first.submit(Job("a", 1))
            async with Batch(work, concurrency=2, record=record, record_error=record_error) as second:
                second.submit(Job("b", 2))
            first.submit(Job("c", 3))  # the inner batch has left; the outer one still runs
        seen.append((gc.get_threshold(), gc.get_freeze_count()))

    try:
        asyncio.run(two_batches())
        assert [threshold for threshold, _ in seen[:3]] == [(40_000, 10, 10)] * 3
        assert all(frozen > 0 for _, frozen in seen[:3])  # what was alive at the start is left out
        assert seen[3] == ((700, 10, 10), 0)
        gc.set_threshold(100_000, 10, 10)  # a process that chose a higher threshold keeps it
        seen.clear()
        asyncio.run(
            run_jobs(work, [Job("d", 4)], concurrency=1, record=record_noop, record_error=record_noop)
        )
        assert seen[0][0] == (100_000, 10, 10) and gc.get_threshold() == (100_000, 10, 10)
    finally:
        gc.set_threshold(*saved)


def record_noop(*_args: object) -> None:
    pass
