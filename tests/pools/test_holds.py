"""What a dead worker held comes back: ``HoldSweeper`` over a real store on each backend (a
FakeClock moves the sweeps and the workers' records), and a real ``hauler worker`` killed with
SIGKILL while a proxy is lent to it, whose proxy a second worker's sweep gives back."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.config import PoolSettings
from hauler.models import JobKind, JobSpec, JobState, WorkerInfo
from hauler.pools.holds import GRACE_SWEEPS, HoldSweeper, sweeping
from hauler.resources import ResourceKind, ResourceSpec, Strategy
from hauler.store import Store, open_store
from tests.fixtures.proxies import HttpProxy, ProxyFarm, proxy_farm
from tests.fixtures.stores import Opener
from tests.transfer.origin import Origin
from tests.worker.fleet import spawn_worker, stop_workers, wait_exit, wait_for

__all__ = ["proxy_farm"]  # a fixture, imported to be found

PROXY = ResourceKind.PROXY
EVERY_S = 30.0
TTL_S = 10.0


def proxies(n: int) -> list[ResourceSpec]:
    return [ResourceSpec(PROXY, f"http://127.0.0.1:{3000 + i}") for i in range(n)]


async def beat(store: Store, name: str, clock: FakeClock, ttl_s: float = TTL_S) -> None:
    info = WorkerInfo(name, "node-1", 1, started_at=clock.now(), seen_at=clock.now(), concurrency=1)
    await store.beat_worker(info, ttl_s)


async def lend(store: Store, resource_id: str, holder: str, times: int = 1) -> None:
    for _ in range(times):
        lent = await store.lend_by(
            PROXY, Strategy.ROUND_ROBIN, sticky_id=resource_id, holder=holder
        )
        assert lent is not None and lent.id == resource_id


async def in_use(store: Store) -> dict[str, int]:
    return {r.id: r.counters.in_use for r in await store.list_resources(PROXY)}


async def test_a_dead_workers_holds_are_given_back_after_two_sweeps_a_live_ones_kept(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    p1, p2 = await store.add_resources(proxies(2))
    await beat(store, "alive", clock, ttl_s=1000.0)
    await beat(store, "dead", clock)
    await lend(store, p1, "alive")
    await lend(store, p1, "dead")
    await lend(store, p2, "dead", times=2)
    await lend(store, p2, "me")  # the sweeper's own worker: never its own sweep's to release
    clock.advance(TTL_S)  # the dead one's record lapses; "me" has none either
    sweeper = HoldSweeper(store, "me", EVERY_S, clock)
    caplog.set_level(logging.INFO, logger="hauler.pools.holds")
    for _ in range(GRACE_SWEEPS):  # found dead, kept while the grace lasts
        assert await sweeper.sweep() == {}
        clock.advance(EVERY_S)
    assert await store.resource_holders() == {"alive": 1, "dead": 3, "me": 1}
    assert await sweeper.sweep() == {"dead": 3}
    assert await in_use(store) == {p1: 1, p2: 1}
    assert await store.resource_holders() == {"alive": 1, "me": 1}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == ["gave back 3 resources held by dead worker dead"]
    clock.advance(10 * EVERY_S)
    assert await sweeper.sweep() == {}  # nothing more: the live one's hold stays
    assert await store.resource_holders() == {"alive": 1, "me": 1}


async def test_a_holder_seen_alive_again_starts_its_grace_over(
    store: Store, clock: FakeClock
) -> None:
    (pid,) = await store.add_resources(proxies(1))
    await beat(store, "w1", clock)
    await lend(store, pid, "w1")
    sweeper = HoldSweeper(store, "me", EVERY_S, clock)
    clock.advance(TTL_S)  # lapsed (the store out of reach for a few beats, say)
    assert await sweeper.sweep() == {}
    clock.advance(EVERY_S)
    await beat(store, "w1", clock)  # back: it was alive after all
    assert await sweeper.sweep() == {}
    clock.advance(TTL_S)
    for _ in range(GRACE_SWEEPS):
        assert await sweeper.sweep() == {}
        clock.advance(EVERY_S)
    assert await sweeper.sweep() == {"w1": 1}
    assert await in_use(store) == {pid: 0}


async def test_two_sweepers_give_a_dead_workers_holds_back_once(
    store: Store, clock: FakeClock, open_more: Opener
) -> None:
    (pid,) = await store.add_resources(proxies(1))
    await lend(store, pid, "dead", times=2)
    other = await open_more()
    sweepers = [HoldSweeper(store, "w1", EVERY_S, clock), HoldSweeper(other, "w2", EVERY_S, clock)]
    for _ in range(GRACE_SWEEPS):
        assert [await s.sweep() for s in sweepers] == [{}, {}]
        clock.advance(EVERY_S)
    both = await asyncio.gather(*[s.sweep() for s in sweepers])
    # One releases both holds; the other finds them released, or no longer lists the holder.
    assert sorted(r.get("dead", 0) for r in both) == [0, 2]
    assert await in_use(store) == {pid: 0}
    assert await store.resource_holders() == {}


async def test_sweeping_runs_every_interval_on_the_clock_until_the_block_ends(
    store: Store, clock: FakeClock
) -> None:
    (pid,) = await store.add_resources(proxies(1))
    await lend(store, pid, "dead")
    swept: asyncio.Queue[Mapping[str, int]] = asyncio.Queue()
    settings = PoolSettings(hold_sweep_s=EVERY_S)
    async with sweeping(store, settings, "me", clock, on_sweep=swept.put_nowait) as sweeper:
        assert sweeper is not None
        rounds = []
        for _ in range(GRACE_SWEEPS + 1):
            await until_waiting(clock)
            clock.advance(EVERY_S)
            rounds.append(await asyncio.wait_for(swept.get(), timeout=10))
        assert rounds == [{}] * GRACE_SWEEPS + [{"dead": 1}]
    assert clock.pending() == 0  # the loop ended with the block
    async with sweeping(store, PoolSettings(enabled=False), "me", clock) as none:
        assert none is None and clock.pending() == 0


async def until_waiting(clock: FakeClock) -> None:
    """Until the sweeper waits on the clock: moving time before would miss it."""
    for _ in range(1000):  # the sweeper's task waits again a few loop turns after a sweep
        if clock.pending():
            break
        await asyncio.sleep(0)
    assert clock.pending() == 1, "the sweeper is not waiting on the clock"


# --- end to end: a worker killed with -9 -----------------------------------------------------

SWEEP_S = 0.5
# A worker's record lives 3 heartbeats + 1 s (FAST_WORKER_ENV's 0.2 s beats): the killed one's
# lapses in 1.6 s; with the grace of two sweeps its proxy is back within a few seconds, far
# inside the lease (so the job is not claimed again meanwhile: only the sweep gives it back).
LEASE_S = 120.0
BACK_WITHIN_S = 15.0


@pytest.mark.slow
async def test_a_killed_workers_proxy_is_given_back_by_another_workers_sweep(
    store_url: str, origin: Origin, proxy_farm: ProxyFarm, tmp_path: Path
) -> None:
    origin.add("slow.bin", 8 * 1024 * 1024, rate_bps=32 * 1024)  # minutes: held all along
    proxy = await proxy_farm.http()
    env = {"HAULER_POOLS__HOLD_SWEEP_S": str(SWEEP_S), "HAULER_WORKER__LEASE_S": str(LEASE_S)}
    out, logs = tmp_path / "out", tmp_path / "logs"
    store = await open_store(store_url)
    workers: list[asyncio.subprocess.Process] = []
    try:
        (pid,) = await store.add_resources([ResourceSpec(PROXY, proxy.url)])
        spec = JobSpec(url=origin.url("slow.bin"), kind=JobKind.FILE)
        (job_id,) = (await store.add([spec])).ids
        workers.append(await spawn_worker(store_url, out, logs, HAULER_WORKER__NAME="wa", **env))
        await wait_for(lambda: lent_and_used(store, proxy, {"wa": 1}))
        workers[0].send_signal(signal.SIGKILL)
        assert await wait_exit(workers[0]) == -signal.SIGKILL
        assert (await in_use_of(store, pid)) == 1  # nobody gave it back: it leaked
        workers.append(await spawn_worker(store_url, out, logs, HAULER_WORKER__NAME="wb", **env))
        await wait_for(lambda: held_by(store, {}), timeout_s=BACK_WITHIN_S)
        assert await in_use_of(store, pid) == 0
        job = await store.get(job_id)
        assert job is not None and (job.state, job.worker) == (JobState.RUNNING, "wa")
    finally:
        await stop_workers(workers)
        await store.close()
    err = (logs / "1.err").read_text()
    assert "gave back 1 resources held by dead worker wa" in err


async def held_by(store: Store, holders: dict[str, int]) -> bool:
    return await store.resource_holders() == holders


async def lent_and_used(store: Store, proxy: HttpProxy, holders: dict[str, int]) -> bool:
    """The proxy is held as ``holders`` say and has forwarded the run's requests."""
    return await held_by(store, holders) and proxy.stats.requests >= 1


async def in_use_of(store: Store, resource_id: str) -> int:
    resource = await store.get_resource(resource_id)
    assert resource is not None
    return resource.counters.in_use
