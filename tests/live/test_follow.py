"""The HLS follower against the real-time stream: outages inside the window lose nothing, one
beyond it is one gap of about the media that left the window, a restart begins a new part,
and it ends on ENDLIST, the offline grace, the maximum duration or a stop; every part it
closes plays (ffprobe) for the sum of its segments' durations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hauler.clock import SystemClock
from hauler.errors import Forbidden
from hauler.live.follow import FollowState, HlsFollower, Recording
from hauler.live.parts import ClosedPart, PartWriter
from hauler.policy.live import EndReason, LiveRules
from tests.live.getter import fetcher_getter
from tests.live.probe import probe
from tests.live.stream import PLAYLIST, HlsStream, hls_stream

# Time for the follower to notice a change of the stream (a poll is at most a second apart).
NOTICE_S = 1.5


@dataclass
class Run:
    """A follower running in the background over the stream, and the parts it reported."""

    follower: HlsFollower
    task: asyncio.Task[Recording]
    reported: list[ClosedPart] = field(default_factory=list)

    async def result(self, timeout_s: float = 30.0) -> Recording:
        async with asyncio.timeout(timeout_s):
            return await self.task


Start = Callable[..., Awaitable[Run]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a follower on a stream's playlist: ``await start(hls, **rules)``."""
    runs: list[Run] = []

    async def begin(
        hls: HlsStream, *, url: str | None = None, split_s: float = 10.0, **rules: object
    ) -> Run:
        getter_context = fetcher_getter(hls.url)
        getter = await getter_context.__aenter__()
        writer = PartWriter(tmp_path / "parts", "room", split_s=split_s)
        reported: list[ClosedPart] = []

        async def on_part(part: ClosedPart) -> None:
            reported.append(part)

        follower = HlsFollower(
            url or hls.url,
            getter,
            SystemClock(),
            writer,
            LiveRules(**rules),  # type: ignore[arg-type]
            on_part=on_part,
            request_timeout_s=1.0,
        )

        async def record() -> Recording:
            try:
                return await follower.run()
            finally:
                await getter_context.__aexit__(None, None, None)

        run = Run(follower, asyncio.create_task(record()), reported)
        runs.append(run)
        return run

    yield begin
    for run in runs:
        run.task.cancel()
        await asyncio.gather(run.task, return_exceptions=True)


def fetched_sequences(hls: HlsStream) -> list[int]:
    """The segments the stream served, by number, in the order they were asked for."""
    names = [e.path for e in hls.requests if e.path.endswith(".ts") and e.status == 200]
    return [int(name.removeprefix("/seg").removesuffix(".ts")) for name in names]


def check_parts(recording: Recording, reported: list[ClosedPart]) -> float:
    """Every part was reported as it closed and plays for its segments' time; their total."""
    assert list(recording.parts) == reported and reported
    for part in reported:
        found = probe(part.staged)
        assert found.streams == {"video", "audio"}
        assert abs(found.duration_s - part.duration_s) <= 0.5, (part, found)
        assert part.staged.stat().st_size == part.bytes
    return sum(part.duration_s for part in reported)


@pytest.mark.slow
async def test_outages_inside_the_window_lose_nothing(tmp_path: Path, start: Start) -> None:
    async with hls_stream(tmp_path / "stream", list_size=10) as hls:
        run = await start(hls, offline_grace_s=20.0)
        await hls.wait_for_segments(6)
        began = time.monotonic()
        hls.stall()  # ~6 s of outages of every kind, inside the 10 s window
        await asyncio.sleep(2.0)
        for outage in (hls.go_missing, hls.fail, hls.reset, hls.hang):
            outage()
            await asyncio.sleep(1.0)
        hls.resume()
        outage_s = time.monotonic() - began
        await hls.wait_for_segments(4)
        await hls.end()
        recording = await run.result()
    assert recording.end is EndReason.ENDLIST and run.follower.state is FollowState.ENDED
    assert recording.gaps == ()
    fetched = fetched_sequences(hls)
    assert fetched == sorted(set(fetched))  # each once, in order
    assert fetched == list(range(len(hls.produced)))  # and all of them
    assert recording.last_sequence == max(hls.produced)
    total = check_parts(recording, run.reported)
    assert total == pytest.approx(hls.produced_s)  # every second the stream put on air
    assert recording.recorded_s == pytest.approx(total)
    statuses = {e.status for e in hls.requests if e.path == f"/{PLAYLIST}"}
    assert {404, 500, 0, 200} <= statuses and 6.0 <= outage_s < 10.0


@pytest.mark.slow
async def test_an_outage_beyond_the_window_is_one_gap(tmp_path: Path, start: Start) -> None:
    async with hls_stream(tmp_path / "stream", list_size=4) as hls:
        run = await start(hls, offline_grace_s=30.0)
        await hls.wait_for_segments(5)
        hls.go_missing()
        outage_began = time.monotonic()
        await hls.wait_for_segments(10)
        hls.resume()
        outage_s = time.monotonic() - outage_began
        await hls.wait_for_segments(4)
        await hls.end()
        recording = await run.result()
    assert recording.end is EndReason.ENDLIST
    fetched = fetched_sequences(hls)
    assert fetched == sorted(set(fetched))
    lost = sorted(set(hls.produced) - set(fetched))
    (gap,) = recording.gaps
    assert lost == list(range(gap.first_sequence, gap.first_sequence + gap.segments))
    # What left the 4 s window during the ~10 s outage, dated by the program dates.
    assert gap.missing_s == pytest.approx(sum(hls.produced[n] for n in lost), abs=0.5)
    assert outage_s - 4.0 - NOTICE_S - 1.0 <= gap.missing_s <= outage_s - 4.0 + NOTICE_S
    before = [n for n in fetched if n < gap.first_sequence]
    assert gap.after_s == pytest.approx(sum(hls.produced[n] for n in before))
    total = check_parts(recording, run.reported)
    assert total + gap.missing_s == pytest.approx(hls.produced_s, rel=0.02)
    # The gap begins a new part: no part spans it.
    assert any(part.first_sequence == gap.first_sequence + gap.segments for part in run.reported)


@pytest.mark.slow
async def test_a_restarted_encoder_begins_a_new_part(tmp_path: Path, start: Start) -> None:
    async with hls_stream(tmp_path / "stream", list_size=6) as hls:
        run = await start(hls, offline_grace_s=20.0)
        await hls.wait_for_segments(3)
        await hls.restart()  # with #EXT-X-DISCONTINUITY
        announced = hls.next_sequence - 1
        await hls.wait_for_segments(3)
        await hls.restart(keep_window=False)  # timestamps from 0 again, nothing said
        unannounced = hls.next_sequence - 1
        await hls.wait_for_segments(3)
        await hls.end()
        recording = await run.result()
    assert recording.gaps == ()
    assert [p.first_sequence for p in run.reported] == [0, announced, unannounced]
    total = check_parts(recording, run.reported)  # each plays for its segments' time
    assert total == pytest.approx(hls.produced_s)


@pytest.mark.slow
async def test_a_stop_closes_the_current_part_and_a_master_playlist_is_followed(
    hls: HlsStream, start: Start
) -> None:
    run = await start(hls, url=hls.master_url)
    await hls.wait_for_segments(3)
    assert run.follower.status().state is FollowState.RECORDING
    assert run.follower.status().part_index == 1
    run.follower.stop()
    recording = await run.result(timeout_s=5.0)
    assert recording.end is EndReason.STOPPED
    assert hls.count("/small/live.m3u8") == 0 and hls.count(f"/{PLAYLIST}") >= 2
    assert check_parts(recording, run.reported) >= 3.0
    assert len(run.reported) == 1 and run.reported[0].index == 1


@pytest.mark.slow
async def test_a_stream_gone_off_air_ends_after_the_grace(hls: HlsStream, start: Start) -> None:
    run = await start(hls, offline_grace_s=2.0)
    await hls.wait_for_segments(2)
    await hls.off_air()  # the playlist stays, unchanged: a stalled stream
    went_off = time.monotonic()
    recording = await run.result(timeout_s=10.0)
    assert recording.end is EndReason.OFFLINE
    assert 2.0 - 1.0 <= time.monotonic() - went_off <= 2.0 + NOTICE_S + 1.0
    assert check_parts(recording, run.reported) == pytest.approx(hls.produced_s)


@pytest.mark.slow
async def test_the_maximum_duration_ends_it(hls: HlsStream, start: Start) -> None:
    run = await start(hls, max_duration_s=3.0, split_s=2.0)
    recording = await run.result(timeout_s=15.0)
    assert recording.end is EndReason.MAX_DURATION
    assert check_parts(recording, run.reported) == pytest.approx(3.0, abs=0.05)
    assert [p.segments for p in run.reported] == [2, 1]


@pytest.mark.slow
async def test_a_refused_playlist_fails_with_the_part_closed(hls: HlsStream, start: Start) -> None:
    run = await start(hls)
    await hls.wait_for_segments(2)
    hls.fail(403)
    with pytest.raises(Forbidden):
        await run.result(timeout_s=5.0)
    (part,) = run.follower.writer.closed  # closed and flushed, for the handler to keep
    assert run.reported == []
    assert probe(part.staged).streams == {"video", "audio"}
