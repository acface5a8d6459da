"""The contract of ``WorkerRegistry``: heartbeats, liveness, removal; run on SQLite and Redis.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock:
leases expire, retries fall due and affinity windows close because the test moves the clock,
never because it sleeps (fixtures: ``tests/fixtures/stores.py``).
"""

from __future__ import annotations

import dataclasses

from hauler.clock import FakeClock
from hauler.models import WorkerInfo
from hauler.store import WorkerRegistry


async def test_worker_heartbeats_liveness_and_removal(
    store: WorkerRegistry, clock: FakeClock
) -> None:
    def info(name: str, **changes: object) -> WorkerInfo:
        base = WorkerInfo(name=name, node="n1", pid=42, started_at=clock.now(),
                          seen_at=clock.now(), concurrency=8, current_jobs=("1", "2"))  # fmt: skip
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    await store.beat_worker(info("w1"), ttl_s=15)
    await store.beat_worker(info("w2", bytes_total=10, is_paused=True), ttl_s=15)
    assert await store.workers() == [info("w1"), info("w2", bytes_total=10, is_paused=True)]
    clock.advance(10)
    await store.beat_worker(info("w2", bytes_per_s=2.5), ttl_s=15)
    clock.advance(5)
    assert [w.name for w in await store.workers()] == ["w2"]
    assert (await store.workers())[0].bytes_per_s == 2.5
    await store.remove_worker("w2")
    await store.remove_worker("never-seen")
    assert await store.workers() == []
