"""The contract of ``JobStore.counts``: always the jobs in each state, whatever was done before.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock:
leases expire, retries fall due and affinity windows close because the test moves the clock,
never because it sleeps (fixtures: ``tests/fixtures/stores.py``).
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hauler.clock import FakeClock
from hauler.errors import LeaseLost
from hauler.models import Job, JobState
from hauler.store import Completion, JobFilter, JobStore, open_store
from tests.store.contract.builders import LEASE_S, assert_counts_match, error, specs

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
        return url.replace("state.db", f"state-{suffix}.db")
    return f"{url}-{suffix}"


async def _operation(store: JobStore, clock: FakeClock, op: str, arg: int, held: list[Job]) -> None:
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


async def _finish(store: JobStore, clock: FakeClock, pick: float, op: str, job: Job) -> None:
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
