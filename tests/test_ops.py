"""hauler.ops against a real store (both backends): the operations the CLI and the HTTP API
share, returning records that hauler.views turns into JSON with secrets masked."""

from __future__ import annotations

import pytest

from hauler import ops
from hauler.intake import BadLine
from hauler.models import JobError, JobState
from hauler.store import JobFilter, Store
from hauler.views import explanation_record, job_record, status_record


async def test_add_lines_tallies_and_reports_bad_lines(store: Store) -> None:
    lines = ["http://127.0.0.1:9/a.bin", "not a url", "http://127.0.0.1:9/a.bin", ""]
    bad: list[BadLine] = []
    tally = await ops.add_lines(store, lines, {"priority": 3}, bad.append)
    assert (tally.added, tally.skipped, tally.bad) == (1, 1, 1)
    assert [b.line_no for b in bad] == [2] and tally.bad_lines[0]["line_no"] == 2
    [job] = await ops.list_jobs(store, JobState.QUEUED, 10)
    assert job.priority == 3


async def test_status_explain_requeue_clear(store: Store) -> None:
    secret = "http://user:hunter2@127.0.0.1:9/s.bin"
    await ops.add_lines(store, [secret, "http://127.0.0.1:9/t.bin"], {})
    await ops.set_paused(store, True, "w7")
    status = await ops.status(store)
    assert status.counts[JobState.QUEUED] == 2 and status.paused_workers == ("w7",)
    assert status_record(status)["paused"] == {"fleet": False, "workers": ["w7"]}
    for job in await store.claim("w1", "n1", 10, 60.0):
        await store.fail(job.id, job.token, JobError("not_found", "gone", 0.0), None)
    [one, _] = await ops.list_jobs(store, None, 10)
    found = await ops.explain_job(store, one.id, affinity_s=0.0)
    assert found is not None and found.job.id == one.id
    assert any("failed with not_found" in r for r in found.reasons)
    record = explanation_record(found)
    assert record["job"] == job_record(found.job) and "hunter2" not in str(record)
    assert await ops.explain_job(store, "no-such-job", 0.0) is None

    flt = ops.job_filter(JobState.FAILED, "not_found", "127.0.0.1", "1h")
    assert not ops.selects_every_job(flt) and ops.selects_every_job(ops.job_filter())
    assert await ops.requeue(store, flt) == 2
    assert await ops.clear(store, JobFilter(state=JobState.QUEUED)) == 2
    at = await ops.request_stop(store)
    assert (await ops.status(store)).stop_requested_at == at


def test_job_filter_names_the_bad_flag() -> None:
    with pytest.raises(ops.BadFilter) as since:
        ops.job_filter(since="soon")
    with pytest.raises(ops.BadFilter) as reason:
        ops.job_filter(reason="gremlins")
    assert since.value.flag == "--since"
    assert reason.value.flag == "--reason" and "not a failure class" in reason.value.message
