"""One worker holding 20 recordings at once (20 real-time ffmpeg streams) keeps downloading
plain files on its lanes, stays under 300 MB of RSS, and `hauler status` shows the
recordings; SIGTERM then closes all 20 open parts and gives the jobs back."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from hauler.models import JobKind, JobSpec, JobState, LiveOptions
from hauler.store import open_store
from tests.cli.hauler_process import hauler
from tests.live.probe import probe
from tests.live.stream import HlsStream, hls_stream
from tests.transfer.origin import Origin
from tests.worker.fleet import sha256_of, spawn_worker, wait_exit, wait_for

ROOMS = 20
FILES = 30
MAX_RSS_BYTES = 300 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    """The resident set of process ``pid`` (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


# One backend: twenty real-time encoders are the most this 2-core machine should run at once.
@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["redis"], indirect=True)
async def test_twenty_recordings_and_plain_files_share_one_worker(
    store_url: str, origin: Origin, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    async with AsyncExitStack() as streams:
        rooms: list[HlsStream] = list(
            await asyncio.gather(
                *(
                    streams.enter_async_context(hls_stream(tmp_path / f"room{n}"))
                    for n in range(ROOMS)
                )
            )
        )
        for n in range(FILES):  # ~1 s each at this rate: lanes busy all along
            origin.add(f"f{n}.bin", 256 * 1024, rate_bps=256 * 1024)
        store = await open_store(store_url)
        try:
            live = LiveOptions(split_s=4.0, offline_grace_s=30.0)
            await store.add([JobSpec(url=room.url, kind=JobKind.LIVE, live=live) for room in rooms])
            worker = await spawn_worker(store_url, out, tmp_path / "logs", "-j", "4")
            peak = 0
            try:

                async def recording_all() -> bool:
                    nonlocal peak
                    peak = max(peak, rss_bytes(worker.pid))
                    ran = await hauler(store_url, "status", "--json")
                    return bool(ran.json()["live"]["recording"] == ROOMS)

                await wait_for(recording_all, 60.0)
                file_ids = (
                    await store.add([JobSpec(url=origin.url(f"f{n}.bin")) for n in range(FILES)])
                ).ids

                async def files_done() -> bool:
                    nonlocal peak
                    peak = max(peak, rss_bytes(worker.pid))
                    jobs = [await store.get(i) for i in file_ids]
                    return all(j is not None and j.state is JobState.DONE for j in jobs)

                await wait_for(files_done, 90.0)
                status = (await hauler(store_url, "status", "--json")).json()
                peak = max(peak, rss_bytes(worker.pid))
            finally:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGTERM)
                code = await wait_exit(worker, 60.0)
            jobs = [j for j in await store.list_jobs() if j.spec.kind is JobKind.LIVE]
        finally:
            await store.close()
    assert code == 0
    for n in range(FILES):
        assert sha256_of(out / f"f{n}.bin") == origin.sha256(f"f{n}.bin")
    # Every file done while all twenty recorded: they never waited for a lane.
    assert status["live"] == {"recording": ROOMS, "watching": 0}
    (info,) = status["workers"]
    assert info["recording"] == ROOMS and info["concurrency"] == 4
    assert peak < MAX_RSS_BYTES, f"worker RSS peaked at {peak / 2**20:.0f} MiB"
    # SIGTERM: every recording's open part closed, probed and listed, the job given back.
    assert len(jobs) == ROOMS
    for job in jobs:
        assert job.state is JobState.QUEUED and job.result is not None
        parts = job.result["live"]["parts"]
        assert parts and "open_part" not in job.result["live"]
        for part in parts:
            assert probe(Path(part["path"])).streams == {"video", "audio"}
    print(f"worker RSS peak: {peak / 2**20:.1f} MiB with {ROOMS} recordings")
