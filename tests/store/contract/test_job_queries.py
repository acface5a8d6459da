"""The contract of ``JobStore``'s operator calls: list_jobs, requeue, clear by filter.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock:
leases expire, retries fall due and affinity windows close because the test moves the clock,
never because it sleeps (fixtures: ``tests/fixtures/stores.py``).
"""

from __future__ import annotations

import pytest

from hauler.clock import FakeClock
from hauler.models import Job, JobState
from hauler.store import Completion, JobFilter, JobStore
from tests.store.contract.builders import LEASE_S, claim_one, error, specs, urls


async def _failed_jobs(store: JobStore, clock: FakeClock) -> dict[str, Job]:
    await store.add(specs("a1", "a2", host="a.example") + specs("b1", host="b.example"))
    await store.add(specs("ok", host="a.example"))
    jobs = {urls([j])[0]: j for j in await store.claim("w1", "n1", 4, LEASE_S)}
    await store.fail(jobs["a1"].id, jobs["a1"].token, error(clock, "not_found"), None)
    clock.advance(10)
    await store.fail(jobs["a2"].id, jobs["a2"].token, error(clock, "forbidden"), None)
    await store.fail(jobs["b1"].id, jobs["b1"].token, error(clock, "not_found"), None)
    await store.complete([Completion(jobs["ok"].id, jobs["ok"].token)])
    return jobs


async def test_list_jobs_filters_and_orders_by_update(store: JobStore, clock: FakeClock) -> None:
    await _failed_jobs(store, clock)
    assert urls(await store.list_jobs(JobFilter(state=JobState.FAILED, host="a.example"))) == [
        "a2", "a1"
    ]  # fmt: skip
    assert urls(await store.list_jobs(JobFilter(reason="not_found"))) == ["b1", "a1"]
    assert len(await store.list_jobs(JobFilter(since=clock.now()))) == 3
    assert len(await store.list_jobs(JobFilter(limit=2))) == 2
    assert await store.list_jobs(JobFilter(collection="other")) == []


async def test_requeue_filters_by_state_reason_host_and_since(
    store: JobStore, clock: FakeClock
) -> None:
    jobs = await _failed_jobs(store, clock)
    assert await store.requeue(JobFilter(reason="not_found", host="b.example")) == 1
    b1 = await store.get(jobs["b1"].id)
    assert b1 is not None and b1.state is JobState.QUEUED and b1.attempts == 0
    assert b1.ready_at == clock.now()
    assert await store.requeue(JobFilter(since=clock.now())) == 1  # a2 (a1 failed earlier)
    assert await store.requeue(JobFilter()) == 1  # a1
    assert await store.requeue(JobFilter(state=JobState.DONE)) == 1
    with pytest.raises(ValueError, match="running"):
        await store.requeue(JobFilter(state=JobState.RUNNING))
    assert await store.counts() == {**dict.fromkeys(JobState, 0), JobState.QUEUED: 4}
    assert len(await store.claim("w1", "n1", 10, LEASE_S)) == 4


async def test_clear_deletes_matching_jobs_and_forgets_their_keys(
    store: JobStore, clock: FakeClock
) -> None:
    jobs = await _failed_jobs(store, clock)
    await store.add(specs("queued", "running"))
    running = await claim_one(store)
    assert await store.clear(JobFilter(state=JobState.FAILED, host="a.example")) == 2
    assert await store.get(jobs["a1"].id) is None
    assert (await store.add(specs("a1"))).added == 1
    assert await store.clear(JobFilter()) == 4  # b1, ok, queued, a1 again: not the running one
    assert await store.get(running.id) is not None
    assert await store.clear(JobFilter(state=JobState.RUNNING)) == 1
    assert await store.counts() == dict.fromkeys(JobState, 0)
    assert await store.complete([Completion(running.id, running.token)]) == [running.id]
