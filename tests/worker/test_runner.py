"""The worker against real stores (SQLite, Redis) and the fault-injecting origin."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hauler.clock import FakeClock, SystemClock
from hauler.models import JobState
from hauler.store import JobFilter, Store
from hauler.transfer.engine import Engine
from hauler.worker.flags import PAUSE_FILE
from hauler.worker.modes import Mode
from hauler.worker.runner import Identity, Worker
from tests.transfer.origin import Fault, Origin
from tests.worker.fleet import (
    add_urls,
    drain,
    pipeline_for,
    sha256_of,
    state_of,
    transfer_settings,
    wait_for,
    worker_in_process,
    worker_settings,
)

KIB = 1024


async def test_drain_downloads_every_job(store: Store, origin: Origin, tmp_path: Path) -> None:
    sizes = {
        f"f{i}.bin": size
        for i, size in enumerate([1, 1000, 64 * KIB, 300 * KIB, 1200 * KIB, 5, 77 * KIB, 2 * KIB])
    }
    for name, size in sizes.items():
        origin.add(name, size)
    ids = await add_urls(store, [origin.url(name) for name in sizes])
    summary = await drain(store, tmp_path)
    assert (summary.done, summary.failed, summary.retried) == (len(sizes), 0, 0)
    assert summary.bytes_total == sum(sizes.values())
    counts = await store.counts()
    assert counts[JobState.DONE] == len(sizes)
    for job_id, name in zip(ids, sizes, strict=True):
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.DONE and job.result is not None
        assert sha256_of(Path(job.result["path"])) == origin.sha256(name)
    assert not list(tmp_path.glob("*.part*"))
    assert await store.workers() == []  # the worker removed its record on exit


async def test_transient_errors_retry_then_succeed(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    origin.add("flaky.bin", 100 * KIB, faults={1: Fault(status=503), 2: Fault(status=500)})
    [job_id] = await add_urls(store, [origin.url("flaky.bin")])
    summary = await drain(store, tmp_path)
    assert (summary.done, summary.retried, summary.failed) == (1, 2, 0)
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.DONE and job.attempts == 3
    assert sha256_of(tmp_path / "flaky.bin") == origin.sha256("flaky.bin")


async def test_fatal_404_fails_with_reason_and_requeue_works(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    [job_id] = await add_urls(store, [origin.url("late.bin")], max_attempts=5)
    summary = await drain(store, tmp_path)
    assert (summary.failed, summary.retried) == (1, 0)
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.attempts == 1
    assert job.error is not None and job.error.error_class == "not_found"
    origin.add("late.bin", 10 * KIB)
    assert await store.requeue(JobFilter(reason="not_found")) == 1
    assert (await drain(store, tmp_path)).done == 1
    assert sha256_of(tmp_path / "late.bin") == origin.sha256("late.bin")


async def test_pause_by_store_flag_and_by_file(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    origin.add("a.bin", 10 * KIB)
    origin.add("b.bin", 10 * KIB)
    await store.set_paused(True)
    [first] = await add_urls(store, [origin.url("a.bin")])
    async with worker_in_process(store, tmp_path, Mode.FOREVER) as (_, task):
        await _wait_beat(store, is_paused=True)  # it has read the flag (and claimed nothing)
        assert await state_of(store, first) is JobState.QUEUED
        await store.set_paused(False)
        await wait_for(lambda: _is_state(store, first, JobState.DONE))

        await _wait_beat(store, is_paused=False)
        (tmp_path / PAUSE_FILE).touch()
        await _wait_beat(store, is_paused=True)
        [second] = await add_urls(store, [origin.url("b.bin")])
        await _wait_beat(store, is_paused=True, after=time.time())
        assert await state_of(store, second) is JobState.QUEUED
        (tmp_path / PAUSE_FILE).unlink()
        await wait_for(lambda: _is_state(store, second, JobState.DONE))
        assert not task.done()
    assert sha256_of(tmp_path / "b.bin") == origin.sha256("b.bin")


async def _wait_beat(store: Store, is_paused: bool, after: float = 0.0) -> None:
    """Until the worker's heartbeat record, written after ``after``, shows ``is_paused``."""

    async def beat_shows() -> bool:
        return any(w.is_paused is is_paused and w.seen_at > after for w in await store.workers())

    await wait_for(beat_shows)


async def _is_state(store: Store, job_id: str, state: JobState) -> bool:
    return await state_of(store, job_id) is state


async def test_stop_request_ends_a_forever_worker(store: Store, tmp_path: Path) -> None:
    async with worker_in_process(store, tmp_path, Mode.FOREVER) as (_, task):
        await wait_for(lambda: _has_workers(store))
        await store.request_stop()
        await wait_for(lambda: _is_done(task))
        assert task.result().stopped_by == "stop requested"
    assert await store.workers() == []


class _ClockAhead(SystemClock):
    """A worker machine whose clock runs an hour ahead of the one that asks for the stop."""

    def now(self) -> float:
        return super().now() + 3600.0


async def test_stop_request_reaches_a_worker_whose_clock_runs_ahead(
    store: Store, tmp_path: Path
) -> None:
    await store.request_stop()  # an old request, from before this worker: not for it
    async with Engine(transfer_settings()) as engine:
        worker = Worker(
            store,
            pipeline_for(engine, tmp_path),
            worker_settings(),
            mode=Mode.FOREVER,
            identity=Identity("ahead", "node-1", 1),
            clock=_ClockAhead(),
        )
        task = asyncio.create_task(worker.run())
        try:
            await wait_for(lambda: _has_workers(store))
            assert not task.done()
            await store.request_stop()
            await wait_for(lambda: _is_done(task))
        finally:
            worker.request_stop("test over")
            async with asyncio.timeout(10):
                await asyncio.wait([task])
    assert task.result().stopped_by == "stop requested"


async def _has_workers(store: Store) -> bool:
    return bool(await store.workers())


async def _is_done(task: asyncio.Future[object]) -> bool:
    return task.done()


async def test_once_mode_runs_one_batch(store: Store, origin: Origin, tmp_path: Path) -> None:
    names = [f"o{i}.bin" for i in range(5)]
    for name in names:
        origin.add(name, 4 * KIB)
    await add_urls(store, [origin.url(name) for name in names])
    async with worker_in_process(store, tmp_path, Mode.ONCE, concurrency=3) as (_, task):
        await wait_for(lambda: _is_done(task))
    assert task.result().done == 3
    counts = await store.counts()
    assert (counts[JobState.DONE], counts[JobState.QUEUED]) == (3, 2)


async def test_stop_lets_running_jobs_finish_within_grace(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    origin.add("short.bin", 96 * KIB, rate_bps=256 * KIB)
    [job_id] = await add_urls(store, [origin.url("short.bin")])
    async with worker_in_process(store, tmp_path, Mode.FOREVER, grace_s=30.0) as (worker, task):
        await wait_for(lambda: _is_state(store, job_id, JobState.RUNNING))
        worker.request_stop("test")
        await wait_for(lambda: _is_done(task))
    assert (task.result().done, task.result().released) == (1, 0)
    assert sha256_of(tmp_path / "short.bin") == origin.sha256("short.bin")


async def test_second_stop_cancels_at_once_and_releases(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    origin.add("long.bin", 4 * 1024 * KIB, rate_bps=64 * KIB)
    [job_id] = await add_urls(store, [origin.url("long.bin")])
    async with worker_in_process(store, tmp_path, Mode.FOREVER, grace_s=600.0) as (worker, task):
        await wait_for(lambda: _is_state(store, job_id, JobState.RUNNING))
        worker.request_stop("first")
        worker.request_stop("second")
        await wait_for(lambda: _is_done(task))
    assert (task.result().done, task.result().released) == (0, 1)
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED


async def test_a_full_disk_stops_claiming_and_retries_the_job_later(
    store: Store, origin: Origin, small_disk: Path
) -> None:
    # No Content-Length: nothing is pre-allocated, the 1 MiB disk fills up mid-stream.
    origin.add("big.bin", 3 * 1024 * KIB, chunked=True)
    origin.add("small.bin", 64 * KIB)
    [big] = await add_urls(store, [origin.url("big.bin")], priority=1)
    [small] = await add_urls(store, [origin.url("small.bin")])
    settings = {"concurrency": 1, "min_free_bytes": 256 * KIB, "disk_check_s": 0.05}
    # Another user's file keeps the disk full after the big job's partial is removed.
    filler = small_disk / "someone-elses.bin"
    filler.write_bytes(b"\0" * (800 * KIB))
    clock, counted = FakeClock(start=time.time()), _RoundCounter(store)
    async with worker_in_process(counted, small_disk, Mode.FOREVER, clock=clock, **settings):
        await wait_for(lambda: _is(store, big, JobState.RETRYING))
        job = await store.get(big)
        assert job is not None and job.error is not None
        assert job.error.error_class == "local" and "disk full" in job.error.message
        assert job.ready_at >= job.error.at + 60, "a disk-full job must not come straight back"
        # The lane is free, but the disk is full: the small job must wait.
        await _rounds_pass(counted, clock, 5)
        assert await state_of(store, small) is JobState.QUEUED
        # Room again: the worker takes jobs again.
        filler.unlink()
        for partial in small_disk.glob("big.bin.part*"):
            partial.unlink()
        await wait_for(_ticking(clock, lambda: _is(store, small, JobState.DONE)))
    assert sha256_of(small_disk / "small.bin") == origin.sha256("small.bin")


async def _is(store: Store, job_id: str, state: JobState) -> bool:
    return await state_of(store, job_id) is state


class _RoundCounter:
    """The store, counting the worker's claim rounds (each reads the pause flag)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.rounds = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def is_paused(self, worker: str) -> bool:
        self.rounds += 1
        return await self._store.is_paused(worker)


async def _rounds_pass(counted: _RoundCounter, clock: FakeClock, rounds: int) -> None:
    """Move the worker's fake clock on, a quarter second at a time, until it has been through
    ``rounds`` claim rounds (each a poll interval after the last: each checks the disk again).

    Ticking until the count moves, not one ``advance`` per round: the count moves when a round
    starts reading the flags, and a round still in that read when the clock moves goes to sleep
    after the move and would wait for a tick that never came (seen on Redis in CI).
    """
    for _ in range(rounds):
        seen = counted.rounds
        await wait_for(_ticking(clock, lambda seen=seen: _has_run_since(counted, seen), 0.25))


async def _has_run_since(counted: _RoundCounter, seen: int) -> bool:
    return counted.rounds > seen


def _ticking(
    clock: FakeClock, check: Callable[[], Awaitable[bool]], step_s: float = 0.05
) -> Callable[[], Awaitable[bool]]:
    """``check``, moving the worker's fake clock on by ``step_s`` each time it is polled."""

    async def ticking() -> bool:
        clock.advance(step_s)
        return await check()

    return ticking


def _remount(mount_point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)


async def test_a_read_only_directory_stops_claiming_and_keeps_the_jobs(
    store: Store, origin: Origin, small_disk: Path
) -> None:
    """A real EROFS (root ignores mode bits, not a read-only mount): the job is kept for later
    instead of failed for good, the worker claims nothing more until it can write again."""
    origin.add("a.bin", 32 * KIB)
    origin.add("b.bin", 48 * KIB)
    settings = {"concurrency": 1, "disk_check_s": 0.05, "min_free_bytes": 0}
    clock, counted = FakeClock(start=time.time()), _RoundCounter(store)
    async with worker_in_process(counted, small_disk, Mode.FOREVER, clock=clock, **settings):
        _remount(small_disk, "ro")
        try:
            [first] = await add_urls(store, [origin.url("a.bin")], priority=1)
            await wait_for(_ticking(clock, lambda: _is(store, first, JobState.RETRYING)))
            job = await store.get(first)
            assert job is not None and job.error is not None
            assert job.error.error_class == "local"
            assert "read-only file system" in job.error.message
            assert job.ready_at >= job.error.at + 60
            [second] = await add_urls(store, [origin.url("b.bin")])
            await _rounds_pass(counted, clock, 5)  # five claim rounds, each checking the disk
            assert await state_of(store, second) is JobState.QUEUED
            [info] = await store.workers()
            assert info.is_paused
        finally:
            _remount(small_disk, "rw")
        await wait_for(_ticking(clock, lambda: _is(store, second, JobState.DONE)))
    assert sha256_of(small_disk / "b.bin") == origin.sha256("b.bin")


async def test_status_sees_a_pause_and_a_running_job_within_a_second(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    """The worker record is published when it changes, not only every heartbeat: here the
    heartbeat is an hour away on the worker's fake clock, which the test moves a quarter second
    at a time (the publisher's spacing, ``PUBLISH_MIN_S``, is four ticks)."""
    # 0.75 s in real time: the publish after the job starts (a few ticks) lands while it runs.
    origin.add("slow.bin", 96 * KIB, faults={1: Fault(rate_bps=128 * KIB)})
    settings = {"heartbeat_s": 3600.0, "lease_s": 4 * 3600.0, "concurrency": 2}
    clock = FakeClock(start=time.time())
    begun = clock.monotonic()
    async with worker_in_process(store, tmp_path / "out", Mode.FOREVER, clock=clock, **settings):

        async def is_paused() -> bool:
            workers = await store.workers()
            return bool(workers) and workers[0].is_paused

        async def runs(job_id: str) -> bool:
            workers = await store.workers()
            return bool(workers) and workers[0].current_jobs == (job_id,)

        await wait_for(lambda: _has_workers(store))
        await store.set_paused(True)
        await wait_for(_ticking(clock, is_paused, 0.25), timeout_s=5.0)
        await store.set_paused(False)
        [slow] = await add_urls(store, [origin.url("slow.bin")])
        await wait_for(_ticking(clock, lambda: runs(slow), 0.25), timeout_s=5.0)
        await wait_for(_ticking(clock, lambda: _is(store, slow, JobState.DONE), 0.25))

        async def is_idle() -> bool:
            workers = await store.workers()
            return bool(workers) and workers[0].current_jobs == ()

        await wait_for(_ticking(clock, is_idle, 0.25), timeout_s=5.0)
        assert clock.monotonic() - begun < 3600.0, "the heartbeat would have run"
