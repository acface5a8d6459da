"""Chaos: three `hauler worker` processes on one store, kill -9'ed at random moments and
restarted, many times; then a fresh worker drains the queue. Every job must be done exactly
once, every file whole. On SQLite, on Redis, and on Redis that is itself kill -9'ed mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from hauler.models import JobState
from hauler.store import Store, open_store
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.stores import make_store_url
from tests.transfer.origin import Origin
from tests.worker.fleet import add_urls, sha256_of, spawn_worker, wait_exit

pytestmark = pytest.mark.slow

KIB = 1024
WORKERS = 3
KILLS = 15
CHAOS_BUDGET_S = 30.0
WORKER_ARGS = ("--mode", "forever", "--lease", "2", "--concurrency", "4")
MIN_AGE_S = 1.5
DONE_LINE = re.compile(r"job \S+ done: (\S+) \(")


def _publish_files(origin: Origin, rng: random.Random) -> dict[str, int]:
    """30 throttled files (kills land mid-transfer) and 30 quick ones; name → size."""
    sizes: dict[str, int] = {}
    for i in range(30):
        size = rng.randrange(512 * KIB, 1536 * KIB)
        origin.add(f"slow{i:02d}.bin", size, rate_bps=128 * KIB)
        sizes[f"slow{i:02d}.bin"] = size
    for i in range(30):
        size = rng.randrange(1, 256 * KIB)
        origin.add(f"quick{i:02d}.bin", size)
        sizes[f"quick{i:02d}.bin"] = size
    return sizes


class Fleet:
    """The worker processes of one chaos run."""

    def __init__(self, store_url: str, out: Path, logs: Path) -> None:
        self.store_url, self.out, self.logs = store_url, out, logs
        self.procs: list[asyncio.subprocess.Process] = []
        self.started: list[float] = []

    async def start(self, index: int | None = None) -> None:
        """Start worker ``index`` (a new one when None)."""
        proc = await spawn_worker(self.store_url, self.out, self.logs, *WORKER_ARGS)
        now = asyncio.get_running_loop().time()
        if index is None:
            self.procs.append(proc)
            self.started.append(now)
        else:
            self.procs[index], self.started[index] = proc, now

    def victim(self, rng: random.Random) -> int:
        """A random worker that has had time to start working (imports take about a second)."""
        now = asyncio.get_running_loop().time()
        settled = [i for i, at in enumerate(self.started) if now - at >= MIN_AGE_S]
        return rng.choice(settled) if settled else min(range(WORKERS), key=self.started.__getitem__)

    async def kill(self, index: int) -> None:
        proc = self.procs[index]
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    async def kill_all(self) -> None:
        for index in range(len(self.procs)):
            await self.kill(index)


async def _is_finished(store: Store, total: int) -> bool:
    counts = await store.counts()
    return counts[JobState.DONE] + counts[JobState.FAILED] == total


async def _chaos(
    fleet: Fleet, store: Store, total: int, rng: random.Random, redis: RedisServer | None
) -> int:
    """Kill -9 a random worker at random moments (restarting it) until KILLS or the queue is
    done; the Redis variant also kills the server once mid-run. Returns the kills made."""
    kills = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHAOS_BUDGET_S
    while kills < KILLS and loop.time() < deadline:
        await asyncio.sleep(rng.uniform(0.4, 1.6))
        with contextlib.suppress(Exception):
            if await _is_finished(store, total):
                break
        index = fleet.victim(rng)
        await fleet.kill(index)
        kills += 1
        if redis is not None and kills == KILLS // 2:
            redis.kill()
            await asyncio.sleep(1.5)  # an outage the workers must ride out
            await asyncio.to_thread(redis.start)
        await fleet.start(index)
    return kills


async def _run_chaos(
    store_url: str, origin: Origin, tmp_path: Path, redis: RedisServer | None
) -> None:
    rng = random.Random(20261122)
    sizes = _publish_files(origin, rng)
    out, logs = tmp_path / "out", tmp_path / "logs"
    store = await open_store(store_url)
    try:
        # The default retry budget (5): lost leases (the kills) must not use it up.
        ids = await add_urls(store, [origin.url(name) for name in sizes])
    finally:
        await store.close()
    fleet = Fleet(store_url, out, logs)
    for _ in range(WORKERS):
        await fleet.start()
    store = await open_store(store_url)
    try:
        kills = await _chaos(fleet, store, len(sizes), rng, redis)
        await fleet.kill_all()
        for file in origin.files.values():
            file.rate_bps = None  # the drain need not wait for the throttle
        drainer = await spawn_worker(store_url, out, logs, "--mode", "drain", "--lease", "2")
        assert await wait_exit(drainer, timeout_s=60.0) == 0
        await _check(store, ids=ids, sizes=sizes, origin=origin, out=out, logs=logs)
    finally:
        await fleet.kill_all()
        await store.close()
    assert kills >= 5, "the queue finished before the chaos got going"


async def _check(
    store: Store, *, ids: list[str], sizes: dict[str, int], origin: Origin, out: Path, logs: Path
) -> None:
    counts = await store.counts()
    assert counts[JobState.DONE] == len(sizes) and sum(counts.values()) == len(sizes), counts
    reclaimed, resumed_bytes = 0, 0
    for job_id, name in zip(ids, sizes, strict=True):
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.DONE and job.result is not None, name
        assert Path(job.result["path"]) == out / name
        assert sha256_of(out / name) == origin.sha256(name), name
        reclaimed += job.token > 1  # every claim raises the token; kills are not attempts
        resumed_bytes += job.result["resumed_bytes"]
    # The kills did land mid-transfer, and the partial files were resumed, not restarted.
    print(f"chaos: {reclaimed} jobs re-claimed, {resumed_bytes} bytes resumed from partials")
    assert reclaimed >= 3 and resumed_bytes > 0
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes), "stray or partial files left"
    # No duplicate completion: the store applied at most one per job, as the logs tell.
    logged = Counter(
        m.group(1) for f in logs.glob("*.err") for m in DONE_LINE.finditer(f.read_text())
    )
    assert set(logged) <= set(sizes) and all(n == 1 for n in logged.values()), logged.most_common(3)


async def test_kill9_chaos_sqlite(origin: Origin, tmp_path: Path) -> None:
    await _run_chaos(make_store_url("sqlite", tmp_path, None), origin, tmp_path, None)


async def test_kill9_chaos_redis(origin: Origin, redis_server: RedisServer, tmp_path: Path) -> None:
    await _run_chaos(make_store_url("redis", tmp_path, redis_server), origin, tmp_path, None)


async def test_kill9_chaos_with_redis_killed_too(
    origin: Origin, dedicated_redis: RedisServer, tmp_path: Path
) -> None:
    await _run_chaos(
        make_store_url("redis", tmp_path, dedicated_redis), origin, tmp_path, dedicated_redis
    )
