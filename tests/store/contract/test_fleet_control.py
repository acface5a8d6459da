"""The contract of ``FleetControl``: pause flags and the stop request; run on SQLite and Redis.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock:
leases expire, retries fall due and affinity windows close because the test moves the clock,
never because it sleeps (fixtures: ``tests/fixtures/stores.py``).
"""

from __future__ import annotations

from hauler.clock import FakeClock
from hauler.store import FleetControl


async def test_pause_the_fleet_or_one_worker(store: FleetControl) -> None:
    assert await store.paused_workers() == (False, [])
    await store.set_paused(True, "w2")
    await store.set_paused(True, "w1")
    assert (await store.is_paused("w1"), await store.is_paused("w3")) == (True, False)
    assert await store.paused_workers() == (False, ["w1", "w2"])
    await store.set_paused(False, "w1")
    await store.set_paused(True)
    assert (await store.is_paused("w1"), await store.is_paused("w3")) == (True, True)
    assert await store.paused_workers() == (True, ["w2"])
    await store.set_paused(False)
    assert await store.paused_workers() == (False, [])
    assert not await store.is_paused("w2")


async def test_stop_request_records_its_time(store: FleetControl, clock: FakeClock) -> None:
    assert await store.stop_requested_at() is None
    clock.advance(5)
    assert await store.request_stop() == clock.now()
    clock.advance(5)
    assert await store.stop_requested_at() == clock.now() - 5
