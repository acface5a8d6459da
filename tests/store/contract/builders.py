"""What the contract tests of every role build jobs and errors with."""

from __future__ import annotations

from hauler.clock import FakeClock
from hauler.models import Job, JobError, JobSpec, JobState
from hauler.store import JobStore

LEASE_S = 30.0


def specs(*names: str, priority: int = 0, host: str = "a.example") -> list[JobSpec]:
    return [JobSpec(url=f"http://{host}/{name}", priority=priority) for name in names]


def urls(jobs: list[Job]) -> list[str]:
    return [job.spec.url.rsplit("/", 1)[-1] for job in jobs]


def error(clock: FakeClock, error_class: str = "connection") -> JobError:
    return JobError(error_class=error_class, message=f"{error_class} broke", at=clock.now())


async def claim_one(store: JobStore, worker: str = "w1", node: str = "n1") -> Job:
    (job,) = await store.claim(worker, node, 1, LEASE_S)
    return job


async def assert_counts_match(store: JobStore) -> None:
    jobs = await store.list_jobs()
    real = {state: sum(1 for j in jobs if j.state is state) for state in JobState}
    assert await store.counts() == real
