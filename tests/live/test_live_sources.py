"""A live job's three sources through the pipeline: a room page "not live yet" polled until its
stream is on (the notify hook told when it goes live and when it ends), an HTTP-FLV URL
recorded into FLV parts, and a monitor job (``watch``) that records one session, waits while
the room is off the air, records the next, and gives itself back when stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hauler.errors import Interrupted, NotLive
from hauler.models import JobKind, JobSpec, LiveOptions
from hauler.pipeline.handler import Continuation
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import result_record
from hauler.pipeline.run import Pipeline
from hauler.transfer.engine import Engine
from tests.live.flv import FlvSource
from tests.live.probe import last_packet_s, probe
from tests.live.room import receiver, room_page
from tests.live.stream import HlsStream, hls_stream
from tests.worker.fleet import transfer_settings

WAIT_S = 40.0


def check_parts(parts: list[dict[str, Any]], extension: str) -> float:
    """Every part plays with video and audio for about its listed duration; their total."""
    total = 0.0
    for part in parts:
        path = Path(part["path"])
        assert path.name.endswith(extension) and path.stat().st_size == part["bytes"]
        found = probe(path)
        assert found.streams == {"video", "audio"}, path.name
        played = found.duration_s or last_packet_s(path)
        assert abs(played - part["duration_s"]) <= 0.6, (part, found)
        total += part["duration_s"]
    return total


async def until(check: Any, what: str) -> None:
    """Return once ``check()`` holds; fail after ``WAIT_S`` (polled every 50 ms, bounded)."""
    for _ in range(int(WAIT_S / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not within {WAIT_S} s: {what}")


@pytest.mark.slow
async def test_a_room_not_live_yet_is_recorded_once_it_goes_live(
    hls: HlsStream, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    async with room_page() as room, receiver() as hook, Engine(transfer_settings()) as engine:
        options = LiveOptions(split_s=3.0, poll_s=0.3, notify_url=hook.url())
        spec = JobSpec(url=room.url, kind=JobKind.LIVE, live=options)
        job = asyncio.create_task(Pipeline(resolver_for(engine), out).run(spec))
        await until(lambda: room.count() >= 3, "three polls of the offline room")
        assert not job.done() and not list(out.glob("*.ts*"))
        room.go_live(hls.url)
        await until(lambda: len(hook.events) >= 1, "the live event")
        await hls.wait_for_segments(5)
        await hls.end()
        async with asyncio.timeout(WAIT_S):
            record = result_record(await job)
        await until(lambda: len(hook.events) >= 2, "the ended event")
    live = record["live"]
    assert live["end"] == "endlist" and live["sessions"] == 1 and live["gaps"] == []
    assert check_parts(live["parts"], ".ts") >= 5.0
    went_live, ended = hook.events
    assert went_live["event"] == "live" and went_live["url"] == room.url
    assert ended["event"] == "ended" and ended["end"] == "endlist"
    assert [p["path"] for p in ended["parts"]] == [p["path"] for p in live["parts"]]


@pytest.mark.slow
async def test_an_flv_stream_is_recorded_into_flv_parts(flv: FlvSource, tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = LiveOptions(split_s=3.0, max_duration_s=7.0, offline_grace_s=5.0)
    spec = JobSpec(url=flv.url, kind=JobKind.LIVE, live=options)
    async with Engine(transfer_settings()) as engine:
        async with asyncio.timeout(WAIT_S):
            record = result_record(await Pipeline(resolver_for(engine), out).run(spec))
    live = record["live"]
    assert live["end"] == "max_duration" and len(live["parts"]) >= 2
    total = check_parts(live["parts"], ".flv")
    assert total == pytest.approx(7.0, abs=1.5)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        Path(p["path"]).name for p in live["parts"]
    )


@pytest.mark.slow
async def test_a_monitor_job_records_every_session_until_stopped(tmp_path: Path) -> None:
    out, saved = tmp_path / "out", []

    async def save(result: dict[str, Any]) -> None:
        saved.append(result)

    continuation = Continuation(save=save)
    options = LiveOptions(split_s=30.0, poll_s=0.3, watch=True)
    async with room_page() as room, Engine(transfer_settings()) as engine:
        spec = JobSpec(url=room.url, kind=JobKind.LIVE, live=options)
        pipeline = Pipeline(resolver_for(engine), out)
        job = asyncio.create_task(pipeline.run(spec, continuation=continuation))
        for session in ("one", "two"):
            async with hls_stream(tmp_path / session) as hls:
                room.go_live(hls.url)
                await hls.wait_for_segments(3)
                await hls.end()
                await until(lambda: _state(saved) == "waiting", f"session {session} over")
                room.go_offline()
        polls = room.count()
        await until(lambda: room.count() >= polls + 2, "polls while off the air")
        continuation.stop.set()
        with pytest.raises(Interrupted):
            async with asyncio.timeout(WAIT_S):
                await job
    live = saved[-1]["live"]
    assert live["sessions"] == 2 and live["gaps"] == []  # off the air is not a gap
    assert len(live["parts"]) == 2  # one a session: the split is longer than each
    assert check_parts(live["parts"], ".ts") >= 6.0


def _state(saved: list[dict[str, Any]]) -> str | None:
    return saved[-1]["live"]["state"] if saved else None


@pytest.mark.slow
async def test_parts_are_remuxed_into_mp4_as_they_close(hls: HlsStream, tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = LiveOptions(split_s=3.0, remux="mp4")
    spec = JobSpec(url=hls.url, kind=JobKind.LIVE, live=options)
    async with Engine(transfer_settings()) as engine:
        job = asyncio.create_task(Pipeline(resolver_for(engine), out).run(spec))
        await hls.wait_for_segments(7)
        await hls.end()
        async with asyncio.timeout(WAIT_S):
            record = result_record(await job)
    parts = record["live"]["parts"]
    assert len(parts) >= 2
    assert check_parts(parts, ".mp4") == pytest.approx(hls.produced_s, abs=1.0)
    # Only the MP4 parts are left: no MPEG-TS original, no remux directory.
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p["path"]).name for p in parts)


async def test_a_stream_never_on_the_air_is_not_live(hls: HlsStream, tmp_path: Path) -> None:
    hls.go_missing()  # the playlist answers 404 all along
    options = LiveOptions(offline_grace_s=1.0)
    spec = JobSpec(url=hls.url, kind=JobKind.LIVE, live=options)
    async with Engine(transfer_settings()) as engine:
        with pytest.raises(NotLive, match="did not answer within the offline grace"):
            async with asyncio.timeout(WAIT_S):
                await Pipeline(resolver_for(engine), tmp_path / "out").run(spec)
    assert not list((tmp_path / "out").glob("*"))
