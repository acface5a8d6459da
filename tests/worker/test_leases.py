"""Leases under stress: a lost lease, SIGTERM with transfers running, kill -9 of a worker."""

from __future__ import annotations

import contextlib
import fcntl
import json
import signal
import time
from pathlib import Path

from hauler.clock import FakeClock
from hauler.models import Job, JobState
from hauler.store import Completion, Store, open_store
from hauler.worker.modes import Mode
from tests.transfer.origin import Origin
from tests.worker.fleet import (
    add_urls,
    drain,
    sha256_of,
    spawn_worker,
    wait_exit,
    wait_for,
    worker_in_process,
)

KIB = 1024
MIB = 1024 * KIB


async def _steal(store: Store, clock: FakeClock, job_id: str) -> Job:
    """Let the job's lease expire (fake time) and claim it as another worker."""
    for _ in range(50):  # the victim's heartbeat may renew between advance and claim: retry
        clock.advance(60.0)
        for job in await store.claim("thief", "node-1", 1, lease_s=3600.0, affinity_s=0.0):
            assert job.id == job_id
            return job
    raise AssertionError("could not take the lease over")


def _is_unlocked(part: Path) -> bool:
    """True when no transfer holds the ``.part`` file's lock any more."""
    with part.open("rb+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


async def test_lost_lease_cancels_transfer_and_stale_worker_never_completes(
    store_url: str, origin: Origin, tmp_path: Path
) -> None:
    clock = FakeClock(start=time.time())
    store = await open_store(store_url, clock)
    try:
        origin.add("slow.bin", 2 * MIB, rate_bps=64 * KIB)
        [job_id] = await add_urls(store, [origin.url("slow.bin")])
        async with worker_in_process(store, tmp_path, Mode.FOREVER, lease_s=30.0) as (worker, task):
            part = tmp_path / "slow.bin.part"

            async def is_transferring() -> bool:
                return origin.bytes_sent("slow.bin") > 0 and part.exists()

            await wait_for(is_transferring)
            stolen = await _steal(store, clock, job_id)

            async def is_abandoned() -> bool:
                return worker.summary.lost == 1 and _is_unlocked(part)

            await wait_for(is_abandoned)  # cancelled at the next heartbeat, file lock released
        summary = task.result()
        assert (summary.done, summary.released, summary.failed) == (0, 0, 0)
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.RUNNING
        assert (job.worker, job.token) == ("thief", stolen.token)
        # Fencing: the stale token is refused, the thief's accepted.
        stale = Completion(job_id, stolen.token - 1, {"by": "stale"})
        assert await store.complete([stale]) == [job_id]
        assert await store.complete([Completion(job_id, stolen.token, {"by": "thief"})]) == []
        done = await store.get(job_id)
        assert done is not None and done.result == {"by": "thief"}
    finally:
        await store.close()


async def _start_slow_transfer(
    store_url: str, origin: Origin, tmp_path: Path, *worker_args: str, **env: str
) -> tuple[str, object]:
    remote = origin.add("big.bin", 4 * MIB, rate_bps=384 * KIB)
    store = await open_store(store_url)
    try:
        [job_id] = await add_urls(store, [origin.url("big.bin")])
    finally:
        await store.close()
    out = tmp_path / "out"
    proc = await spawn_worker(store_url, out, tmp_path / "logs", *worker_args, **env)
    control = out / "big.bin.part.json"

    async def has_partial() -> bool:
        return origin.bytes_sent("big.bin") >= 384 * KIB and control.exists()

    try:
        await wait_for(has_partial)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return job_id, (proc, remote)


async def _resume_and_check(store: Store, origin: Origin, out: Path, job_id: str) -> None:
    """Finish the job with an in-process worker; it must resume from the partial."""
    first_run_requests = origin.files["big.bin"].requests
    written = _written_ranges(out / "big.bin.part.json")
    origin.files["big.bin"].rate_bps = None
    summary = await drain(store, out)
    assert summary.done == 1
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.DONE and job.result is not None
    assert sha256_of(out / "big.bin") == origin.sha256("big.bin")
    resumed_bytes = sum(end - start for start, end in written)
    assert job.result["resumed_bytes"] == resumed_bytes >= 256 * KIB
    # Nothing on disk was fetched again: the bytes written are exactly the missing ones, and no
    # request of the resumed run starts inside a range the first run had written. (A request may
    # repeat another's range: the endgame takes over a lane that has not started yet.)
    assert job.result["bytes_fetched"] == 4 * MIB - resumed_bytes
    resumed = [r for r in origin.requests_for("big.bin") if r.index > first_run_requests]
    starts = [_span(r.range)[0] for r in resumed]
    assert starts and not [at for at in starts for a, b in written if a <= at < b]
    assert not list(out.glob("*.part*"))


def _written_ranges(control_path: Path) -> list[tuple[int, int]]:
    """The ``[start, pos)`` ranges a control file records as written."""
    segments = json.loads(control_path.read_text())["segments"]
    return [(start, pos) for start, _end, pos in segments if pos > start]


def _span(header: str | None) -> tuple[int, int]:
    """``bytes=a-b`` as ``(a, b + 1)``."""
    assert header is not None and header.startswith("bytes=")
    first, _, last = header.removeprefix("bytes=").partition("-")
    return int(first), int(last) + 1 if last else 4 * MIB


async def test_sigterm_waits_grace_then_releases_and_work_resumes(
    store_url: str, store: Store, origin: Origin, tmp_path: Path
) -> None:
    job_id, handles = await _start_slow_transfer(
        store_url, origin, tmp_path, "--mode", "forever", HAULER_WORKER__GRACE_S="0.3"
    )
    proc, _ = handles  # type: ignore[misc]
    proc.send_signal(signal.SIGTERM)
    assert await wait_exit(proc) == 0
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED  # released, not failed
    assert "1 released" in (tmp_path / "logs" / "0.out").read_text()
    await _resume_and_check(store, origin, tmp_path / "out", job_id)


async def test_kill_9_worker_job_resumes_elsewhere_from_its_partial(
    store_url: str, store: Store, origin: Origin, tmp_path: Path
) -> None:
    job_id, handles = await _start_slow_transfer(
        store_url, origin, tmp_path, "--mode", "forever", "--lease", "1.5"
    )
    proc, _ = handles  # type: ignore[misc]
    proc.kill()
    await proc.wait()
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.RUNNING  # until its lease expires
    # The next worker looks at the store a minute later (fake time): the lease has run out.
    later = await open_store(store_url, FakeClock(start=time.time() + 60.0))
    try:
        await _resume_and_check(later, origin, tmp_path / "out", job_id)
    finally:
        await later.close()
