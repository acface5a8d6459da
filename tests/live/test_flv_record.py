"""The FLV recorder against ffmpeg's real-time HTTP-FLV stream, over hauler's own HTTP client
(``FetcherStreamer`` on ``AiohttpFetcher``): parts split at key frames each play on their own
(ffprobe: video and audio, as long as the media recorded into them); a drop is a reconnect
into a new part and one gap of about the outage; a stream that stays away ends after the
offline grace, its parts closed; ``stop()`` closes the part being written, playable; a 403
fails at once with the part closed."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from hauler.clock import SystemClock
from hauler.config import TransferSettings
from hauler.errors import Forbidden
from hauler.live.flvrecord import FlvRecorder
from hauler.live.follow import FollowState, Recording
from hauler.live.parts import ClosedPart, PartWriter
from hauler.net import Sessions
from hauler.pipeline.livegetter import FetcherStreamer
from hauler.policy.live import EndReason, LiveRules
from hauler.transfer.fetch import AiohttpFetcher
from tests.live.flv import FlvSource, free_port
from tests.live.probe import probe

pytestmark = pytest.mark.slow


@asynccontextmanager
async def fetcher_streamer(home_url: str) -> AsyncIterator[FetcherStreamer]:
    """A ``FetcherStreamer`` on sessions of its own, closed on exit."""
    settings = TransferSettings(read_timeout_s=10.0, connect_timeout_s=5.0)
    sessions = Sessions(settings, environ={})
    fetcher = AiohttpFetcher(
        sessions=sessions,
        headers={},
        proxy=None,
        clock=SystemClock(),
        settings=settings,
        home_url=home_url,
    )
    try:
        yield FetcherStreamer(fetcher)
    finally:
        await sessions.close()


@dataclass
class Run:
    """A recorder running in the background, and the parts it reported."""

    recorder: FlvRecorder
    task: asyncio.Task[Recording]
    reported: list[ClosedPart] = field(default_factory=list)

    async def result(self, timeout_s: float = 30.0) -> Recording:
        async with asyncio.timeout(timeout_s):
            return await self.task

    async def until(self, ready: Callable[[], bool], timeout_s: float = 15.0) -> None:
        """Wait (bounded) until ``ready()``; the recorder must still be running."""
        for _ in range(int(timeout_s / 0.05)):
            if ready():
                return
            assert not self.task.done(), "the recording ended early"
            await asyncio.sleep(0.05)
        raise AssertionError("the recording never got there")


Start = Callable[..., Awaitable[Run]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a recorder on a URL: ``await start(url, split_s=…, **rules)``."""
    runs: list[Run] = []

    async def begin(url: str, *, split_s: float = 60.0, **rules: object) -> Run:
        context = fetcher_streamer(url)
        streamer = await context.__aenter__()
        writer = PartWriter(tmp_path / "parts", "room", split_s=math.inf, extension="flv")
        reported: list[ClosedPart] = []

        async def on_part(part: ClosedPart) -> None:
            reported.append(part)

        recorder = FlvRecorder(
            url,
            streamer,
            SystemClock(),
            writer,
            LiveRules(**{"retry_base_s": 0.2, **rules}),  # type: ignore[arg-type]
            split_s=split_s,
            on_part=on_part,
            read_timeout_s=2.0,
        )

        async def record() -> Recording:
            try:
                return await recorder.run()
            finally:
                await context.__aexit__(None, None, None)

        run = Run(recorder, asyncio.create_task(record()), reported)
        runs.append(run)
        return run

    yield begin
    for run in runs:
        run.recorder.stop()
        await asyncio.wait([run.task], timeout=10)


def assert_plays(part: ClosedPart) -> None:
    """The part is a playable FLV with video and audio, as long as its recorded media."""
    assert part.staged.read_bytes()[:3] == b"FLV"
    probed = probe(part.staged)
    assert probed.streams == {"video", "audio"}, part.staged.name
    assert part.duration_s > 0.5
    assert probed.duration_s == pytest.approx(part.duration_s, rel=0.1), part.staged.name


def recorded(run: Run) -> float:
    return run.recorder.status().recorded_s


async def test_parts_split_at_key_frames_each_play_for_their_media(
    flv: FlvSource, start: Start
) -> None:
    run = await start(flv.url, split_s=3.0, max_duration_s=8.0)
    recording = await run.result()
    assert recording.end is EndReason.MAX_DURATION
    assert len(recording.parts) == 3 and run.reported == list(recording.parts)
    for part in recording.parts:
        assert_plays(part)
        assert part.path.name.endswith(f".part{part.index:03d}.flv")
    # Split at the first key frame (one a second) at 3 s or more into the part.
    assert [round(part.duration_s) for part in recording.parts] == [3, 3, 2]
    assert recording.recorded_s == pytest.approx(8.0, abs=0.1)
    assert sum(part.duration_s for part in recording.parts) == pytest.approx(
        recording.recorded_s, abs=0.001
    )
    assert recording.gaps == ()
    assert recording.bytes == sum(part.bytes for part in recording.parts)
    assert recording.bytes == sum(part.staged.stat().st_size for part in recording.parts)


async def test_a_drop_reconnects_into_a_new_part_with_one_gap_of_the_outage(
    flv: FlvSource, start: Start
) -> None:
    run = await start(flv.url, offline_grace_s=20.0)
    await run.until(lambda: recorded(run) >= 3.0)
    dropped_at = time.monotonic()
    await flv.close()
    await run.until(lambda: run.recorder.status().state is FollowState.RECONNECTING)
    await asyncio.sleep(2.0)
    await flv.restart()
    outage_s = time.monotonic() - dropped_at  # the stream was away at least this long
    await run.until(lambda: run.recorder.status().gaps == 1)
    before = recorded(run)
    await run.until(lambda: recorded(run) >= before + 2.0)
    run.recorder.stop()
    recording = await run.result()
    assert recording.end is EndReason.STOPPED
    assert len(recording.parts) == 2 and run.reported == list(recording.parts)
    for part in recording.parts:
        assert_plays(part)
    (gap,) = recording.gaps
    assert gap.after_s == pytest.approx(recording.parts[0].duration_s, abs=0.001)
    # From the drop to the first media after it: the outage, then the reconnect (a backoff
    # of at most ~1.6 s from a 0.2 s base) and ffmpeg's first key frame.
    assert outage_s - 0.5 <= gap.missing_s <= outage_s + 4.0
    assert flv.starts == 2


async def test_a_stream_that_stays_away_ends_after_the_grace_with_its_part_closed(
    flv: FlvSource, start: Start
) -> None:
    run = await start(flv.url, offline_grace_s=3.0)
    await run.until(lambda: recorded(run) >= 2.0)
    await flv.close()
    gone_at = time.monotonic()
    recording = await run.result()
    assert time.monotonic() - gone_at >= 3.0 - 0.5  # it waited for the grace
    assert recording.end is EndReason.OFFLINE
    (part,) = recording.parts
    assert run.reported == [part]
    assert_plays(part)
    assert recording.gaps == ()  # nothing came after the drop: no gap, the end


async def test_a_stream_never_there_ends_offline_without_parts(start: Start) -> None:
    run = await start(f"http://127.0.0.1:{free_port()}/live.flv", offline_grace_s=2.0)
    recording = await run.result()
    assert recording.end is EndReason.OFFLINE
    assert recording.parts == () and recording.bytes == 0


async def test_stop_closes_the_part_being_written_playable(flv: FlvSource, start: Start) -> None:
    run = await start(flv.url, split_s=60.0)
    await run.until(lambda: recorded(run) >= 3.0)
    assert run.recorder.status().part_index == 1 and run.reported == []
    run.recorder.stop()
    recording = await run.result()
    assert recording.end is EndReason.STOPPED
    (part,) = recording.parts
    assert run.reported == [part]
    assert_plays(part)
    assert part.duration_s == pytest.approx(recording.recorded_s)


@dataclass
class Origin:
    """An origin of a made 3 s FLV file that answers each GET as ``answers`` says in turn
    (``serve``: the whole file; ``hang``: half of it, then nothing; a number: that status;
    past the list: 404), noting what it answered."""

    url: str = ""
    answers: list[str | int] = field(default_factory=list)
    answered: list[str | int] = field(default_factory=list)


@pytest.fixture
async def origin(tmp_path: Path) -> AsyncIterator[Origin]:
    made = tmp_path / "three.flv"
    ffmpeg = await asyncio.create_subprocess_exec(
        *("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"),
        *("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25"),
        *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "3"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-f", "flv", str(made)),
    )
    assert await asyncio.wait_for(ffmpeg.wait(), 60) == 0
    state = Origin()
    hung = asyncio.Event()  # never set: a hanging answer waits until the test ends

    async def serve(request: web.Request) -> web.StreamResponse:
        count = len(state.answered)
        answer = state.answers[count] if count < len(state.answers) else 404
        state.answered.append(answer)
        if isinstance(answer, int):
            return web.Response(status=answer)
        data = made.read_bytes()
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
        await response.prepare(request)
        await response.write(data if answer == "serve" else data[: len(data) // 2])
        if answer == "hang":
            await hung.wait()
        return response

    app = web.Application()
    app.router.add_get("/live.flv", serve)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/live.flv"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_a_403_on_reconnect_fails_at_once_with_the_part_closed(
    origin: Origin, start: Start
) -> None:
    origin.answers = ["serve", 403]
    run = await start(origin.url, offline_grace_s=30.0)
    with pytest.raises(Forbidden):
        await run.result()
    assert origin.answered == ["serve", 403]  # no retry of the 403
    (part,) = run.recorder.writer.closed
    assert run.reported == [part]
    assert_plays(part)


async def test_a_stall_is_a_drop_a_404_a_stream_off_the_air(origin: Origin, start: Start) -> None:
    origin.answers = ["hang", 503, "serve"]  # then 404 until the grace ends it
    run = await start(origin.url, offline_grace_s=3.0)
    recording = await run.result()
    assert recording.end is EndReason.OFFLINE
    assert origin.answered[:3] == ["hang", 503, "serve"] and set(origin.answered[3:]) == {404}
    first, second = recording.parts
    for part in recording.parts:
        assert_plays(part)
    assert first.duration_s < second.duration_s  # half the file, then all of it
    (gap,) = recording.gaps
    assert gap.after_s == pytest.approx(first.duration_s, abs=0.001)
    assert gap.missing_s >= 2.0  # the read timeout: no bytes for 2 s is a stall
