"""Live jobs in the fleet, as the issue's "Done when" names them: a 90 s stream with a short
outage inside its window and a long one beyond it, recorded by a job into probed parts; a
worker killed with -9 mid-recording, its job continued by another worker into a new part
(the part it had open adopted, none lost); SIGTERM closing the open part before the job goes
back to the queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from hauler.models import Job, JobKind, JobSpec, JobState, LiveOptions
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import result_record
from hauler.pipeline.run import Pipeline
from hauler.store import JobFilter, Store, open_store
from hauler.transfer.engine import Engine
from hauler.worker.modes import Mode
from hauler.worker.runner import Worker
from tests.live.probe import probe
from tests.live.stream import HlsStream, hls_stream
from tests.worker.fleet import (
    spawn_worker,
    transfer_settings,
    wait_exit,
    wait_for,
    worker_in_process,
)

LEASE_S = 3.0


def check_parts(parts: list[dict[str, Any]], out: Path) -> float:
    """Every listed part is in ``out``, plays with video and audio for its listed duration,
    and no temporary part is left beside them; the parts' total ffprobe duration."""
    total = 0.0
    for part in parts:
        path = Path(part["path"])
        assert path.parent == out and path.stat().st_size == part["bytes"]
        found = probe(path)
        assert found.streams == {"video", "audio"}, path.name
        assert abs(found.duration_s - part["duration_s"]) <= 0.6, (part, found)
        total += found.duration_s
    assert not [p.name for p in out.iterdir() if p.name.endswith(".part")]
    listed = sorted(Path(p["path"]).name for p in parts)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == listed
    return total


async def outage(hls: HlsStream, seconds: float) -> float:
    """The playlist answers 404 for ``seconds``; how long it really was."""
    began = time.monotonic()
    hls.go_missing()
    await asyncio.sleep(seconds)
    hls.resume()
    return time.monotonic() - began


@pytest.mark.slow
async def test_a_90_s_stream_with_two_outages_is_recorded_with_one_gap(tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = LiveOptions(split_s=20.0, offline_grace_s=60.0)
    async with (
        hls_stream(tmp_path / "stream", list_size=20) as hls,
        Engine(transfer_settings()) as engine,
    ):
        spec = JobSpec(url=hls.url, kind=JobKind.LIVE, live=options)
        job = asyncio.create_task(Pipeline(resolver_for(engine), out).run(spec))
        await hls.wait_for_segments(10, timeout_s=30)
        short = await outage(hls, 10.0)  # inside the 20 s window: nothing lost
        await hls.wait_for_segments(10, timeout_s=30)
        long = await outage(hls, 40.0)  # 20 s beyond the window: one gap of ~20 s
        await hls.wait_for_segments(20, timeout_s=40)
        # An encoder on a loaded machine lags real time: on air for 90 s of media, not less.
        for _ in range(150):  # 30 s at most
            if hls.produced_s >= 90.0:
                break
            await asyncio.sleep(0.2)
        await hls.end()
        async with asyncio.timeout(60):
            record = result_record(await job)
    on_air_s = hls.produced_s
    live = record["live"]
    assert live["end"] == "endlist" and on_air_s >= 90.0
    (gap,) = live["gaps"]
    assert long - 20.0 - 3.0 <= gap["missing_s"] <= long - 20.0 + 2.0
    # The short outage left no gap: the gap comes after the ~30 s before the long one.
    assert short >= 9.5 and gap["after_s"] >= 25.0
    total = check_parts(live["parts"], out)
    # What the parts hold and the reported gap together are the time the stream was on air.
    assert total + gap["missing_s"] == pytest.approx(on_air_s, rel=0.05)
    assert total == pytest.approx(live["recorded_s"], rel=0.02)


async def _job(store_url: str, job_id: str) -> Job:
    store = await open_store(store_url)
    try:
        job = await store.get(job_id)
    finally:
        await store.close()
    assert job is not None
    return job


async def _add_live(store_url: str, url: str, **options: Any) -> str:
    store: Store = await open_store(store_url)
    try:
        added = await store.add([JobSpec(url=url, kind=JobKind.LIVE, live=LiveOptions(**options))])
    finally:
        await store.close()
    return added.ids[0]


def _parts(job: Job) -> list[dict[str, Any]]:
    return list(((job.result or {}).get("live") or {}).get("parts", []))


@pytest.mark.slow
async def test_kill_9_mid_recording_another_worker_continues_into_a_new_part(
    store_url: str, tmp_path: Path
) -> None:
    out, logs = tmp_path / "out", tmp_path / "logs"
    env = {"HAULER_WORKER__LEASE_S": str(LEASE_S)}
    async with hls_stream(tmp_path / "stream", list_size=10) as hls:
        job_id = await _add_live(store_url, hls.url, split_s=3.0, offline_grace_s=20.0)
        first = await spawn_worker(store_url, out, logs, **env)
        try:
            await wait_for(lambda: _has_parts(store_url, job_id, 2, with_open=True), 30.0)
        finally:
            with contextlib.suppress(ProcessLookupError):
                first.kill()
            await first.wait()
        killed_at = time.monotonic()
        before = _parts(await _job(store_url, job_id))
        orphans = [p for p in out.iterdir() if p.name.endswith(".part")]
        assert len(orphans) == 1  # the part open at the kill, playable as it is
        assert probe(orphans[0]).streams == {"video", "audio"}
        second = await spawn_worker(store_url, out, logs, **env)
        try:
            await wait_for(lambda: _has_parts(store_url, job_id, len(before) + 2), 30.0)
            continued_s = time.monotonic() - killed_at
            await hls.wait_for_segments(3)
            await hls.end()
            await wait_for(lambda: _is_done(store_url, job_id), 30.0)
        finally:
            second.send_signal(signal.SIGTERM)
            await wait_exit(second)
    job = await _job(store_url, job_id)
    assert job.state is JobState.DONE and job.result is not None
    parts = _parts(job)
    assert parts[: len(before)] == before  # what the first worker listed stays listed
    adopted = Path(str(orphans[0]).removesuffix(".part")).name
    assert adopted in [Path(p["path"]).name for p in parts]  # the open part: adopted, listed
    total = check_parts(parts, out)
    live = job.result["live"]
    # Continued within the lease (plus the new worker's start) from where the stream was:
    # the window (10 s) outlasted the takeover, so nothing is missing.
    assert continued_s <= LEASE_S + 10.0
    assert live["gaps"] == [] and live["end"] == "endlist"
    assert total == pytest.approx(hls.produced_s, rel=0.05)


async def _has_parts(store_url: str, job_id: str, count: int, with_open: bool = False) -> bool:
    job = await _job(store_url, job_id)
    live = (job.result or {}).get("live") or {}
    # An open part that holds a segment (killed before its first, it is empty and removed).
    has_open = (live.get("open_part") or {}).get("last_sequence") is not None
    return len(live.get("parts", [])) >= count and (not with_open or has_open)


async def _is_done(store_url: str, job_id: str) -> bool:
    return (await _job(store_url, job_id)).state is JobState.DONE


@pytest.mark.slow
async def test_sigterm_closes_the_open_part_and_gives_the_recording_back(
    store_url: str, hls: HlsStream, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job_id = await _add_live(store_url, hls.url, split_s=60.0)
    worker = await spawn_worker(store_url, out, tmp_path / "logs")
    try:
        await hls.wait_for_segments(4)
        await wait_for(lambda: _has_open(store_url, job_id), 20.0)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await wait_exit(worker) == 0
    job = await _job(store_url, job_id)
    assert job.state is JobState.QUEUED and job.attempts == 0  # given back, uncounted
    (part,) = _parts(job)  # the 60 s part, closed early: probed, in place, listed
    assert check_parts([part], out) >= 3.0
    assert "open_part" not in (job.result or {})["live"]


async def _has_open(store_url: str, job_id: str) -> bool:
    live = ((await _job(store_url, job_id)).result or {}).get("live") or {}
    return "open_part" in live


@pytest.mark.slow
async def test_a_recording_cleared_from_the_queue_lands_its_open_part(
    store: Store, hls: HlsStream, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    [spec] = [JobSpec(url=hls.url, kind=JobKind.LIVE, live=LiveOptions(split_s=60.0, watch=True))]
    [job_id] = (await store.add([spec])).ids
    async with worker_in_process(store, out, Mode.FOREVER) as (worker, _):

        async def has_open_segment() -> bool:
            job = await store.get(job_id)
            live = ((job.result if job else None) or {}).get("live") or {}
            return (live.get("open_part") or {}).get("last_sequence") is not None

        await wait_for(has_open_segment, 20.0)
        assert await store.clear(JobFilter(state=JobState.RUNNING)) == 1  # `hauler clear`
        await wait_for(lambda: _idle(worker), 20.0)
        assert worker.summary.lost == 1 and worker.summary.done == 0
    (part,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert part.name.endswith(".part001.ts")  # under its final name, not left as .part
    assert probe(part).streams == {"video", "audio"}


async def _idle(worker: Worker) -> bool:
    return not worker._held
