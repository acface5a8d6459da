"""The contract of ``JobStore``: add, claim, lease calls, retry, affinity; run on SQLite and Redis.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock:
leases expire, retries fall due and affinity windows close because the test moves the clock,
never because it sleeps (fixtures: ``tests/fixtures/stores.py``).
"""

from __future__ import annotations

import asyncio

import pytest

from hauler.clock import FakeClock
from hauler.errors import LeaseLost, StoreUnavailable
from hauler.models import JobError, JobSpec, JobState
from hauler.store import Completion, JobFilter, JobStore, Store
from hauler.store.base import MAX_LOST_LEASES
from tests.fixtures.stores import Opener
from tests.store.contract.builders import (
    LEASE_S,
    assert_counts_match,
    claim_one,
    error,
    specs,
    urls,
)

# --- add and dedupe -------------------------------------------------------------------------


async def test_add_queues_jobs_with_their_spec(store: JobStore, clock: FakeClock) -> None:
    spec = JobSpec(url="http://a.example/x", priority=3, headers={"A": "b"}, max_attempts=7)
    result = await store.add([spec])
    assert result.added == 1 and result.skipped == 0
    job = await store.get(result.ids[0])
    assert job is not None
    assert (job.spec, job.state, job.priority, job.attempts) == (spec, JobState.QUEUED, 3, 0)
    assert (job.max_attempts, job.ready_at, job.created_at) == (7, clock.now(), clock.now())
    assert job.key == "http://a.example/x" and job.token == 0 and job.lease_until is None
    assert await store.get("999999") is None


async def test_add_dedupes_within_a_batch_across_batches_and_after_done(store: JobStore) -> None:
    first = await store.add([*specs("a", "b", "a"), JobSpec(url="HTTP://A.EXAMPLE:80/b")])
    assert (first.added, first.skipped) == (2, 2)
    again = await store.add(specs("b", "c"))
    assert (again.added, again.skipped) == (1, 1)
    jobs = await store.claim("w1", "n1", 10, LEASE_S)
    assert await store.complete([Completion(j.id, j.token) for j in jobs]) == []
    after_done = await store.add(specs("a", "b", "c", "d"))
    assert (after_done.added, after_done.skipped) == (1, 3)
    assert len(set(first.ids + again.ids + after_done.ids)) == 4
    assert (await store.add([])).added == 0


async def test_explicit_key_dedupes_different_urls(store: JobStore) -> None:
    one = JobSpec(url="http://a.example/1", key="same")
    other = JobSpec(url="http://b.example/2", key="same")
    assert (await store.add([one, other])).skipped == 1


# --- claim ----------------------------------------------------------------------------------


async def test_claim_order_is_priority_then_ready_at_then_insertion(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("low1", "low2", priority=0))
    clock.advance(1)
    await store.add(specs("high-late", priority=5))
    await store.add(specs("low3", priority=0))
    await store.add(specs("mid", priority=2) + specs("mid2", priority=2))
    clock.advance(1)
    await store.add(specs("neg", priority=-1))
    jobs = await store.claim("w1", "n1", 10, LEASE_S)
    assert urls(jobs) == ["high-late", "mid", "mid2", "low1", "low2", "low3", "neg"]


async def test_claim_takes_at_most_n_and_sets_the_lease(store: JobStore, clock: FakeClock) -> None:
    await store.add(specs(*"abcde"))
    first = await store.claim("w1", "n1", 3, LEASE_S)
    assert urls(first) == ["a", "b", "c"]
    for job in first:
        assert (job.state, job.worker, job.node) == (JobState.RUNNING, "w1", "n1")
        assert (job.attempts, job.token) == (1, 1)
        assert job.lease_until == clock.now() + LEASE_S
    assert urls(await store.claim("w2", "n2", 3, LEASE_S)) == ["d", "e"]
    assert await store.claim("w3", "n3", 3, LEASE_S) == []
    assert await store.claim("w3", "n3", 0, LEASE_S) == []


async def test_concurrent_claims_never_share_a_job(store: JobStore, open_more: Opener) -> None:
    others = [await open_more() for _ in range(2)]
    await store.add(specs(*(f"j{i}" for i in range(60))))
    rounds = [
        s.claim(f"w{i}-{k}", f"n{i}", 4, LEASE_S)
        for k in range(6)
        for i, s in enumerate([store, *others])
    ]
    claimed = [job.id for batch in await asyncio.gather(*rounds) for job in batch]
    assert len(claimed) == len(set(claimed)) == 60


async def test_expired_lease_is_reclaimed_by_another_worker(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    first = await claim_one(store, "w1", "n1")
    clock.advance(LEASE_S - 1)
    assert await store.claim("w2", "n1", 1, LEASE_S) == []
    clock.advance(1)
    second = await claim_one(store, "w2", "n1")
    assert second.id == first.id and second.worker == "w2"
    assert second.token > first.token
    assert await store.counts() == {**dict.fromkeys(JobState, 0), JobState.RUNNING: 1}


async def test_lost_leases_do_not_use_up_attempts(store: JobStore, clock: FakeClock) -> None:
    # A worker killed again and again (its lease expires each time) is not the job failing.
    await store.add([JobSpec(url="http://a.example/k", max_attempts=2)])
    for _ in range(5):
        job = await claim_one(store)
        assert job.attempts == 1
        clock.advance(LEASE_S)
    job = await claim_one(store)
    assert job.attempts == 1 < job.max_attempts
    stored = await store.get(job.id)
    assert stored is not None and stored.attempts == 1


async def test_a_job_that_keeps_losing_its_worker_fails_as_lost(
    store: JobStore, clock: FakeClock
) -> None:
    # A poison job (its worker dies every time it runs it) must not kill workers forever.
    await store.add(specs("poison"))
    for _ in range(MAX_LOST_LEASES):
        poison = await claim_one(store)
        clock.advance(LEASE_S)
    assert await store.claim("w1", "n1", 1, LEASE_S) == []
    lost = await store.get(poison.id)
    assert lost is not None and lost.state is JobState.FAILED and lost.error is not None
    assert lost.error.error_class == "lost" and f"{MAX_LOST_LEASES} times" in lost.error.message
    await assert_counts_match(store)
    # requeue gives it a fresh budget: it is claimable and may be lost again.
    assert await store.requeue(JobFilter(reason="lost")) == 1
    again = await claim_one(store)
    assert again.id == poison.id and again.attempts == 1
    clock.advance(LEASE_S)
    back = await store.claim("w1", "n1", 1, LEASE_S)
    assert [j.id for j in back] == [poison.id]


async def test_heartbeat_extends_only_current_leases(store: JobStore, clock: FakeClock) -> None:
    await store.add(specs("a", "b"))
    a, b = await store.claim("w1", "n1", 2, LEASE_S)
    clock.advance(20)
    lost = await store.heartbeat([(a.id, a.token), (b.id, b.token + 1), ("nope", 1)], LEASE_S)
    assert sorted(lost) == sorted([b.id, "nope"])
    clock.advance(20)
    (reclaimed,) = await store.claim("w2", "n1", 5, LEASE_S)
    assert reclaimed.id == b.id
    held = await store.get(a.id)
    assert held is not None and held.lease_until == clock.now() - 20 + LEASE_S
    assert await store.heartbeat([], LEASE_S) == []


async def test_stale_token_changes_nothing(store: JobStore, clock: FakeClock) -> None:
    await store.add(specs("a"))
    stale = await claim_one(store, "w1")
    clock.advance(LEASE_S)
    current = await claim_one(store, "w2")
    assert await store.heartbeat([(stale.id, stale.token)], LEASE_S) == [stale.id]
    assert await store.complete([Completion(stale.id, stale.token, {"x": 1})]) == [stale.id]
    with pytest.raises(LeaseLost):
        await store.fail(stale.id, stale.token, error(clock), None)
    with pytest.raises(LeaseLost):
        await store.release(stale.id, stale.token)
    assert await store.get(current.id) == current
    assert await store.complete([Completion(current.id, current.token)]) == []
    with pytest.raises(LeaseLost):
        await store.fail(current.id, current.token, error(clock), None)


async def test_complete_records_the_result(store: JobStore, clock: FakeClock) -> None:
    await store.add(specs("a", "b"))
    a, b = await store.claim("w1", "n1", 2, LEASE_S)
    clock.advance(5)
    result = {"path": "/out/a", "bytes": 12, "sha256": "ab" * 32}
    assert (
        await store.complete([Completion(a.id, a.token, result), Completion(b.id, b.token)]) == []
    )
    done = await store.get(a.id)
    assert done is not None and done.state is JobState.DONE and done.result == result
    assert done.updated_at == clock.now() and done.lease_until is None
    counts = await store.counts()
    assert (counts[JobState.DONE], counts[JobState.RUNNING]) == (2, 0)


# --- fail, retry, release ---------------------------------------------------------------------


async def test_fail_with_retry_at_waits_until_due(store: JobStore, clock: FakeClock) -> None:
    await store.add(specs("a"))
    job = await claim_one(store)
    err = error(clock, "throttled")
    assert await store.fail(job.id, job.token, err, clock.now() + 60) is JobState.RETRYING
    retrying = await store.get(job.id)
    assert retrying is not None and retrying.state is JobState.RETRYING
    assert retrying.error == err and retrying.ready_at == clock.now() + 60
    clock.advance(59)
    assert await store.claim("w1", "n1", 1, LEASE_S) == []
    clock.advance(1)
    again = await claim_one(store)
    assert again.id == job.id and again.attempts == 2 and again.token > job.token


async def test_fail_without_retry_is_final_and_keeps_the_error(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store)
    err = error(clock, "not_found")
    assert await store.fail(job.id, job.token, err, None) is JobState.FAILED
    failed = await store.get(job.id)
    assert failed is not None and failed.state is JobState.FAILED and failed.error == err
    clock.advance(3600)
    assert await store.claim("w1", "n1", 1, LEASE_S) == []
    assert (await store.counts())[JobState.FAILED] == 1


async def test_release_gives_the_job_back_without_counting_the_attempt(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store, "w1", "n1")
    clock.advance(10)
    await store.release(job.id, job.token)
    released = await store.get(job.id)
    assert released is not None and released.state is JobState.QUEUED
    assert (released.attempts, released.ready_at, released.node) == (0, clock.now(), "n1")
    again = await claim_one(store, "w2", "n1")
    assert again.attempts == 1 and again.token > job.token
    with pytest.raises(LeaseLost):
        await store.release(job.id, job.token)


# --- affinity -------------------------------------------------------------------------------


async def test_retried_job_waits_for_its_node_within_affinity(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store, "wa", "node-a")
    await store.fail(job.id, job.token, error(clock), clock.now() + 5)
    clock.advance(5)
    assert await store.claim("wb", "node-b", 1, LEASE_S, affinity_s=30) == []
    assert (await claim_one(store, "wa2", "node-a")).id == job.id


async def test_reclaimed_job_goes_to_another_node_after_affinity(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a", "b"))
    held = await claim_one(store, "wa", "node-a")
    clock.advance(LEASE_S)
    # node-b takes the other job but not the one whose partial file is on node-a.
    assert urls(await store.claim("wb", "node-b", 5, 1000, affinity_s=30)) == ["b"]
    clock.advance(29)
    assert await store.claim("wb", "node-b", 5, LEASE_S, affinity_s=30) == []
    clock.advance(1)
    taken = await store.claim("wb", "node-b", 5, LEASE_S, affinity_s=30)
    assert [j.id for j in taken] == [held.id] and taken[0].node == "node-b"


# --- close (the backend object) --------------------------------------------------------------


async def test_close_keeps_the_data_and_ends_the_store(store: Store, open_more: Opener) -> None:
    result = await store.add(specs("a"))
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.counts()
    reopened = await open_more()
    job = await reopened.get(result.ids[0])
    assert job is not None and job.spec == specs("a")[0]


# --- results saved while running --------------------------------------------------------------


async def test_a_saved_result_comes_back_with_the_next_claim(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store, "w1", "n1")
    parts = {"live": {"parts": [{"path": "a.part001.ts", "bytes": 10}]}}
    await store.save_result(job.id, job.token, parts)
    saved = await store.get(job.id)
    assert saved is not None and saved.result == parts and saved.state is JobState.RUNNING
    clock.advance(61)  # the lease (30 s) and the affinity (30 s) run out: another node takes it
    again = await claim_one(store, "w2", "n2")
    assert again.id == job.id and again.result == parts
    with pytest.raises(LeaseLost):
        await store.save_result(job.id, job.token, {"stale": True})
    await store.save_result(again.id, again.token, {"live": {"parts": []}})
    assert (await store.get(job.id)).result == {"live": {"parts": []}}  # type: ignore[union-attr]


async def test_a_result_is_not_saved_on_a_job_that_is_not_running(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store, "w1", "n1")
    await store.release(job.id, job.token)
    with pytest.raises(LeaseLost):
        await store.save_result(job.id, job.token, {"x": 1})
    released = await store.get(job.id)
    assert released is not None and released.result is None


async def test_an_uncounted_failure_gives_the_attempt_back(
    store: JobStore, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store)
    waiting = JobError("no_resource", "no proxy usable now", clock.now())
    state = await store.fail(job.id, job.token, waiting, clock.now() + 5, is_counted=False)
    assert state is JobState.RETRYING
    after = await store.get(job.id)
    assert after is not None and after.attempts == 0 and after.ready_at == clock.now() + 5
    assert after.error is not None and after.error.error_class == "no_resource"
    clock.advance(5)
    again = await claim_one(store)
    assert again.id == job.id and again.attempts == 1
    await store.fail(again.id, again.token, error(clock), clock.now() + 1)
    counted = await store.get(job.id)
    assert counted is not None and counted.attempts == 1  # a real failure still counts
