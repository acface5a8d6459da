"""The one contract suite of ``hauler.store.base.Store``, run against SQLite and Redis.

Time is a FakeClock: leases expire, retries fall due and affinity windows close because the
test moves the clock, never because it sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hauler.clock import FakeClock
from hauler.errors import LeaseLost
from hauler.models import Job, JobError, JobSpec, JobState, WorkerInfo
from hauler.store import Completion, JobFilter, Store, open_store
from hauler.store.base import MAX_LOST_LEASES
from tests.store.conftest import Opener

LEASE_S = 30.0


def specs(*names: str, priority: int = 0, host: str = "a.example") -> list[JobSpec]:
    return [JobSpec(url=f"http://{host}/{name}", priority=priority) for name in names]


def urls(jobs: list[Job]) -> list[str]:
    return [job.spec.url.rsplit("/", 1)[-1] for job in jobs]


def error(clock: FakeClock, error_class: str = "connection") -> JobError:
    return JobError(error_class=error_class, message=f"{error_class} broke", at=clock.now())


async def claim_one(store: Store, worker: str = "w1", node: str = "n1") -> Job:
    (job,) = await store.claim(worker, node, 1, LEASE_S)
    return job


async def assert_counts_match(store: Store) -> None:
    jobs = await store.list_jobs()
    real = {state: sum(1 for j in jobs if j.state is state) for state in JobState}
    assert await store.counts() == real


# --- add and dedupe -------------------------------------------------------------------------


async def test_add_queues_jobs_with_their_spec(store: Store, clock: FakeClock) -> None:
    spec = JobSpec(url="http://a.example/x", priority=3, headers={"A": "b"}, max_attempts=7)
    result = await store.add([spec])
    assert result.added == 1 and result.skipped == 0
    job = await store.get(result.ids[0])
    assert job is not None
    assert (job.spec, job.state, job.priority, job.attempts) == (spec, JobState.QUEUED, 3, 0)
    assert (job.max_attempts, job.ready_at, job.created_at) == (7, clock.now(), clock.now())
    assert job.key == "http://a.example/x" and job.token == 0 and job.lease_until is None
    assert await store.get("999999") is None


async def test_add_dedupes_within_a_batch_across_batches_and_after_done(store: Store) -> None:
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


async def test_explicit_key_dedupes_different_urls(store: Store) -> None:
    one = JobSpec(url="http://a.example/1", key="same")
    other = JobSpec(url="http://b.example/2", key="same")
    assert (await store.add([one, other])).skipped == 1


# --- claim ----------------------------------------------------------------------------------


async def test_claim_order_is_priority_then_ready_at_then_insertion(
    store: Store, clock: FakeClock
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


async def test_claim_takes_at_most_n_and_sets_the_lease(store: Store, clock: FakeClock) -> None:
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


async def test_concurrent_claims_never_share_a_job(store: Store, open_more: Opener) -> None:
    others = [await open_more() for _ in range(2)]
    await store.add(specs(*(f"j{i}" for i in range(60))))
    rounds = [
        s.claim(f"w{i}-{k}", f"n{i}", 4, LEASE_S)
        for k in range(6)
        for i, s in enumerate([store, *others])
    ]
    claimed = [job.id for batch in await asyncio.gather(*rounds) for job in batch]
    assert len(claimed) == len(set(claimed)) == 60


async def test_expired_lease_is_reclaimed_by_another_worker(store: Store, clock: FakeClock) -> None:
    await store.add(specs("a"))
    first = await claim_one(store, "w1", "n1")
    clock.advance(LEASE_S - 1)
    assert await store.claim("w2", "n1", 1, LEASE_S) == []
    clock.advance(1)
    second = await claim_one(store, "w2", "n1")
    assert second.id == first.id and second.worker == "w2"
    assert second.token > first.token
    assert await store.counts() == {**dict.fromkeys(JobState, 0), JobState.RUNNING: 1}


async def test_lost_leases_do_not_use_up_attempts(store: Store, clock: FakeClock) -> None:
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
    store: Store, clock: FakeClock
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


async def test_heartbeat_extends_only_current_leases(store: Store, clock: FakeClock) -> None:
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


async def test_stale_token_changes_nothing(store: Store, clock: FakeClock) -> None:
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


async def test_complete_records_the_result(store: Store, clock: FakeClock) -> None:
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


async def test_fail_with_retry_at_waits_until_due(store: Store, clock: FakeClock) -> None:
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
    store: Store, clock: FakeClock
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
    store: Store, clock: FakeClock
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
    store: Store, clock: FakeClock
) -> None:
    await store.add(specs("a"))
    job = await claim_one(store, "wa", "node-a")
    await store.fail(job.id, job.token, error(clock), clock.now() + 5)
    clock.advance(5)
    assert await store.claim("wb", "node-b", 1, LEASE_S, affinity_s=30) == []
    assert (await claim_one(store, "wa2", "node-a")).id == job.id


async def test_reclaimed_job_goes_to_another_node_after_affinity(
    store: Store, clock: FakeClock
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


# --- counts under any sequence of operations (hypothesis) ---------------------------------


OPS = ["add", "claim", "complete", "fail", "release", "beat", "tick", "requeue", "clear"]


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    # No shrinking: each step is real store I/O, and shrinking a failure outlasts the test
    # timeout; the unshrunk sequence is printed, and the per-step check names the bad step.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(ops=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 999)), min_size=30, max_size=80))
async def test_counts_always_equal_the_jobs_in_each_state(
    store_url: str, ops: list[tuple[str, int]]
) -> None:
    clock = FakeClock()
    store = await open_store(fresh_url(store_url), clock)
    held: list[Job] = []
    seen: dict[str, Job] = {}
    try:
        for op, arg in ops:
            await _operation(store, clock, op, arg, held)
            await assert_counts_match(store)
            for job in await store.list_jobs():
                _assert_progress(seen.get(job.id), job)
                seen[job.id] = job
    finally:
        await store.close()


def fresh_url(url: str) -> str:
    """Another empty store beside ``url`` (hypothesis runs many examples in one test)."""
    suffix = uuid.uuid4().hex[:8]
    if url.startswith("sqlite"):
        return url.replace("store.db", f"store-{suffix}.db")
    return f"{url}-{suffix}"


async def _operation(store: Store, clock: FakeClock, op: str, arg: int, held: list[Job]) -> None:
    if op == "add":
        await store.add(specs(*(f"k{(arg + 7 * i) % 40}" for i in range(1 + arg % 5))))
    elif op == "claim":
        node = f"n{arg % 2}"
        held += await store.claim(f"w-{node}", node, 1 + arg % 3, LEASE_S, 20)
    elif op == "tick":
        clock.advance([1, 10, 25, 40][arg % 4])
    elif op == "requeue":
        await store.requeue(JobFilter(state=[None, JobState.DONE][arg % 2]))
    elif op == "clear":
        await store.clear(JobFilter(state=[JobState.DONE, JobState.FAILED][arg % 2]))
    elif held:
        job = held.pop(arg % len(held))
        await _finish(store, clock, arg / 1000, op, job)


async def _finish(store: Store, clock: FakeClock, pick: float, op: str, job: Job) -> None:
    try:
        if op == "complete":
            await store.complete([Completion(job.id, job.token)])
        elif op == "fail":
            await store.fail(
                job.id, job.token, error(clock), None if pick < 0.3 else clock.now() + 15
            )
        elif op == "release":
            await store.release(job.id, job.token)
        else:
            await store.heartbeat([(job.id, job.token)], LEASE_S)
    except LeaseLost:
        pass


def _assert_progress(before: Job | None, now: Job) -> None:
    assert now.attempts >= 0
    if before is None:
        return
    assert now.token >= before.token
    if now.token == before.token and now.state is not before.state:
        # Without a claim in between, the job moved once: that move must be a legal one.
        assert now.state in {JobState.QUEUED, JobState.RETRYING, JobState.DONE, JobState.FAILED}


# --- operator commands --------------------------------------------------------------------


async def _failed_jobs(store: Store, clock: FakeClock) -> dict[str, Job]:
    await store.add(specs("a1", "a2", host="a.example") + specs("b1", host="b.example"))
    await store.add(specs("ok", host="a.example"))
    jobs = {urls([j])[0]: j for j in await store.claim("w1", "n1", 4, LEASE_S)}
    await store.fail(jobs["a1"].id, jobs["a1"].token, error(clock, "not_found"), None)
    clock.advance(10)
    await store.fail(jobs["a2"].id, jobs["a2"].token, error(clock, "forbidden"), None)
    await store.fail(jobs["b1"].id, jobs["b1"].token, error(clock, "not_found"), None)
    await store.complete([Completion(jobs["ok"].id, jobs["ok"].token)])
    return jobs


async def test_list_jobs_filters_and_orders_by_update(store: Store, clock: FakeClock) -> None:
    await _failed_jobs(store, clock)
    assert urls(await store.list_jobs(JobFilter(state=JobState.FAILED, host="a.example"))) == [
        "a2", "a1"
    ]  # fmt: skip
    assert urls(await store.list_jobs(JobFilter(reason="not_found"))) == ["b1", "a1"]
    assert len(await store.list_jobs(JobFilter(since=clock.now()))) == 3
    assert len(await store.list_jobs(JobFilter(limit=2))) == 2
    assert await store.list_jobs(JobFilter(collection="other")) == []


async def test_requeue_filters_by_state_reason_host_and_since(
    store: Store, clock: FakeClock
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
    store: Store, clock: FakeClock
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


# --- fleet flags and workers ------------------------------------------------------------------


async def test_pause_the_fleet_or_one_worker(store: Store) -> None:
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


async def test_stop_request_records_its_time(store: Store, clock: FakeClock) -> None:
    assert await store.stop_requested_at() is None
    clock.advance(5)
    assert await store.request_stop() == clock.now()
    clock.advance(5)
    assert await store.stop_requested_at() == clock.now() - 5


async def test_worker_heartbeats_liveness_and_removal(store: Store, clock: FakeClock) -> None:
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


async def test_close_keeps_the_data_and_ends_the_store(
    store: Store, open_more: Opener, clock: FakeClock
) -> None:
    result = await store.add(specs("a"))
    await store.close()
    await store.close()
    from hauler.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable):
        await store.counts()
    reopened = await open_more()
    job = await reopened.get(result.ids[0])
    assert job is not None and job.spec == specs("a")[0]
