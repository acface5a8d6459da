"""The graceful shutdown keeps the worker's clock: its grace period and its wait for the last
heartbeat pass on a ``FakeClock`` the test moves, not in real time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hauler.clock import FakeClock
from hauler.models import JobState, WorkerInfo
from hauler.store import Store
from hauler.worker.modes import Mode
from tests.transfer.origin import Origin
from tests.worker.fleet import add_urls, state_of, wait_for, worker_in_process

KIB = 1024
GRACE_S = 30.0
# Fake seconds the stop may take to reach the shutdown wait (the claim round it interrupts).
SLACK_S = 3.0


async def _tick_until(clock: FakeClock, is_over: Callable[[], bool], ticks: int) -> bool:
    """Move ``clock`` on a second at a time, up to ``ticks`` times, until ``is_over()``; each
    tick gives what it woke (a heartbeat's store call, a lane's end) a moment of real time."""
    for _ in range(ticks):
        if is_over():
            return True
        clock.advance(1.0)
        await asyncio.sleep(0.02)  # a loaded machine (xdist, Redis) needs the real time
    return is_over()


async def _is_running(store: Store, job_id: str) -> bool:
    return await state_of(store, job_id) is JobState.RUNNING


async def test_a_job_still_running_when_grace_ends_goes_back_to_the_queue(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    # 4 MiB at 64 KiB/s: a minute of real time, so it is mid-file for the whole test.
    origin.add("slow.bin", 4 * 1024 * KIB, rate_bps=64 * KIB)
    [job_id] = await add_urls(store, [origin.url("slow.bin")])
    clock = FakeClock(start=time.time())
    settings: dict[str, Any] = {"grace_s": GRACE_S, "concurrency": 1}
    async with worker_in_process(store, tmp_path, Mode.FOREVER, clock=clock, **settings) as (
        worker,
        task,
    ):
        await wait_for(_ticking(clock, lambda: _is_running(store, job_id)))
        worker.request_stop("test")
        stopped_at = clock.monotonic()
        # Within grace: the job keeps running and keeps its lease.
        assert not await _tick_until(clock, task.done, int(GRACE_S) - 1)
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.RUNNING and job.worker == "w1"
        # Past grace: cancelled and handed back, at once in real time.
        assert await _tick_until(clock, task.done, int(SLACK_S) + 2)
        released_after_s = clock.monotonic() - stopped_at
    assert GRACE_S <= released_after_s <= GRACE_S + SLACK_S
    summary = task.result()
    assert (summary.done, summary.released, summary.lost) == (0, 1, 0)
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0
    assert not (tmp_path / "slow.bin").exists()
    partial = tmp_path / "slow.bin.part"
    assert partial.exists() and Path(f"{partial}.json").exists()  # kept for the next worker


def _ticking(
    clock: FakeClock, check: Callable[[], Awaitable[bool]], step_s: float = 0.05
) -> Callable[[], Awaitable[bool]]:
    """``check``, the worker's clock moved on by ``step_s`` first (its claim rounds and its
    heartbeat wait on that clock)."""

    async def ticking() -> bool:
        clock.advance(step_s)
        return await check()

    return ticking


class _StuckBeats:
    """The store, whose worker-record writes hang once ``hang`` is set (a store gone quiet)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.hang = False
        self.stuck = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def beat_worker(self, info: WorkerInfo, ttl_s: float) -> None:
        if self.hang:
            self.stuck.set()
            await asyncio.Event().wait()  # until cancelled
        await self._store.beat_worker(info, ttl_s)


async def test_a_heartbeat_stuck_in_the_store_is_cut_after_one_lease_on_the_clock(
    store: Store, tmp_path: Path
) -> None:
    clock, beats = FakeClock(start=time.time()), _StuckBeats(store)
    lease_s = 20.0
    # A 2 s beat: the record's time to live in the store (7 s, real) outlasts the test, so an
    # empty list at the end means the worker removed its record.
    settings: dict[str, Any] = {"lease_s": lease_s, "heartbeat_s": 2.0}
    async with worker_in_process(beats, tmp_path, Mode.FOREVER, clock=clock, **settings) as (
        worker,
        task,
    ):
        await wait_for(lambda: _has_worker(store))
        beats.hang = True
        await wait_for(_ticking(clock, lambda: _is_set(beats.stuck), step_s=0.5))
        worker.request_stop("test")
        stopped_at = clock.monotonic()
        assert not await _tick_until(clock, task.done, int(lease_s) - 1)
        assert await _tick_until(clock, task.done, int(SLACK_S) + 2)
        ended_after_s = clock.monotonic() - stopped_at
    assert lease_s <= ended_after_s <= lease_s + SLACK_S
    assert await store.workers() == []  # the record was removed after the beat was cut


async def _has_worker(store: Store) -> bool:
    return bool(await store.workers())


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()
