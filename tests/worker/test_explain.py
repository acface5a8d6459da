"""`hauler explain`'s reasons, derived from a job and the fleet's state."""

from __future__ import annotations

from hauler.models import Job, JobError, JobSpec, JobState, WorkerInfo
from hauler.worker.explain import FleetView, explain

NOW = 1_700_000_000.0


def _job(state: JobState, **fields: object) -> Job:
    base: dict[str, object] = {
        "id": "7",
        "key": "k",
        "spec": JobSpec(url="http://127.0.0.1/f.bin"),
        "state": state,
        "priority": 0,
        "attempts": 1,
        "max_attempts": 5,
        "ready_at": NOW - 100,
        "created_at": NOW - 100,
        "updated_at": NOW - 100,
    }
    return Job(**(base | fields))  # type: ignore[arg-type]


def _fleet(workers: tuple[WorkerInfo, ...] = (), is_paused: bool = False) -> FleetView:
    return FleetView(NOW, is_paused, (), workers, affinity_s=30.0)


def _worker(name: str, is_paused: bool = False) -> WorkerInfo:
    return WorkerInfo(name, "n1", 1, NOW - 50, NOW, 4, is_paused=is_paused)


def test_retrying_job_shows_due_time_and_last_error() -> None:
    error = JobError("throttled", "429 from origin", NOW - 5)
    reasons = explain(_job(JobState.RETRYING, ready_at=NOW + 60, error=error), _fleet())
    text = "\n".join(reasons)
    assert "not due until" in text and "(in 60s)" in text
    assert "throttled: 429 from origin" in text
    assert "no live worker" in text


def test_affinity_reservation_and_paused_fleet() -> None:
    job = _job(JobState.QUEUED, node="box-a", ready_at=NOW - 10)
    reasons = explain(job, _fleet((_worker("w1"),), is_paused=True))
    assert any("reserved for node box-a" in r and "(in 20s)" in r for r in reasons)
    assert any("fleet is paused" in r for r in reasons)


def test_running_on_a_dead_worker_with_expired_lease() -> None:
    job = _job(JobState.RUNNING, worker="w9", node="n9", lease_until=NOW - 3)
    reasons = explain(job, _fleet((_worker("w1"),)))
    assert any("running on worker w9" in r for r in reasons)
    assert any("lease has expired" in r for r in reasons)
    assert any("w9 is not alive" in r for r in reasons)


def test_failed_and_done_jobs() -> None:
    failed = _job(JobState.FAILED, error=JobError("not_found", "404 Not Found", NOW))
    assert "failed with not_found: 404 Not Found" in explain(failed, _fleet())[1]
    done = _job(JobState.DONE, result={"path": "/d/f.bin", "size": 10})
    assert explain(done, _fleet())[1] == "done: /d/f.bin (10 bytes)"


def test_every_worker_paused() -> None:
    reasons = explain(_job(JobState.QUEUED), _fleet((_worker("w1", is_paused=True),)))
    assert "every live worker is paused" in reasons
