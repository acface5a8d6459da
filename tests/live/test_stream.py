"""The live fixtures themselves: the HLS playlist slides in real time and its segments vanish
behind the window, each control does what it says, and the FLV source streams playable media."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.live.flv import FlvSource, is_listening
from tests.live.probe import last_packet_s, probe
from tests.live.stream import PLAYLIST, HlsStream, hls_stream, window_of


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def _window(session: aiohttp.ClientSession, hls: HlsStream) -> tuple[int, list[float], str]:
    status, body = await _get(session, hls.url)
    assert status == 200
    text = body.decode()
    first, durations = window_of(text)
    return first, durations, text


@pytest.mark.slow
async def test_the_playlist_slides_and_segments_vanish_behind_it(tmp_path: Path) -> None:
    async with (
        hls_stream(tmp_path / "stream", list_size=3) as hls,
        aiohttp.ClientSession() as session,
    ):
        await hls.wait_for_segments(hls.list_size + 2)
        first, durations, text = await _window(session, hls)
        assert len(durations) == hls.list_size
        assert all(abs(d - 1.0) < 0.05 for d in durations[:-1])
        assert "#EXT-X-PROGRAM-DATE-TIME:" in text and "#EXT-X-ENDLIST" not in text
        began = time.monotonic()
        await hls.wait_for_segments(3)
        later, _, _ = await _window(session, hls)
        elapsed = time.monotonic() - began
        assert later - first >= 3  # real time: about one segment a second
        assert later - first <= elapsed + 1.5
        # Behind the window (ffmpeg keeps one extra segment on disk): gone.
        status, _ = await _get(session, f"http://127.0.0.1:{hls.port}/seg{later - 2}.ts")
        assert status == 404
        status, data = await _get(session, f"http://127.0.0.1:{hls.port}/seg{later}.ts")
        assert status == 200
    segment = tmp_path / "one.ts"
    segment.write_bytes(data)
    found = probe(segment)
    assert found.streams == {"video", "audio"}
    assert abs(found.duration_s - 1.0) < 0.15
    assert hls.count(f"/{PLAYLIST}") == 2


async def test_a_stalled_playlist_stays_the_same_while_the_stream_goes_on(
    hls: HlsStream,
) -> None:
    async with aiohttp.ClientSession() as session:
        hls.stall()
        before = await _window(session, hls)
        await hls.wait_for_segments(2)
        assert await _window(session, hls) == before
        hls.resume()
        after = await _window(session, hls)
        assert after[0] + len(after[1]) >= before[0] + len(before[1]) + 2


async def test_missing_failing_hung_and_reset_playlists(hls: HlsStream) -> None:
    async with aiohttp.ClientSession() as session:
        hls.go_missing()
        assert (await _get(session, hls.url))[0] == 404
        hls.fail(503)
        assert (await _get(session, hls.url))[0] == 503
        hls.reset()
        with pytest.raises(aiohttp.ClientError):
            await _get(session, hls.url)
        hls.hang()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await _get(session, hls.url)
        hls.resume()
        assert (await _get(session, hls.url))[0] == 200
    statuses = [entry.status for entry in hls.requests]
    # aiohttp tries a GET once more on a fresh connection when a reused one was reset.
    assert statuses[:3] == [404, 503, 0] and statuses[-1] == 200


@pytest.mark.slow
async def test_a_restart_continues_the_media_sequence(hls: HlsStream) -> None:
    await hls.wait_for_segments(2)
    before = hls.next_sequence
    await hls.restart()
    async with aiohttp.ClientSession() as session:
        first, durations, text = await _window(session, hls)
        assert "#EXT-X-DISCONTINUITY" in text  # appended: the old segments stay in the window
        assert first < before < first + len(durations)
        assert _names(text) == [f"seg{n}.ts" for n in range(first, first + len(durations))]
        before = hls.next_sequence
        await hls.restart(keep_window=False)
        first, durations, text = await _window(session, hls)
        assert "#EXT-X-DISCONTINUITY" not in text  # a new playlist, numbered on
        assert first == before
        assert _names(text) == [f"seg{n}.ts" for n in range(first, first + len(durations))]
    assert hls.encoders == 3
    assert sorted(hls.produced) == list(range(len(hls.produced)))  # none skipped, none reused


def _names(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def test_the_end_appends_endlist_and_nothing_changes_after(hls: HlsStream) -> None:
    await hls.wait_for_segments(1)
    await hls.end()
    async with aiohttp.ClientSession() as session:
        ended = await _window(session, hls)
        await asyncio.sleep(1.5)
        assert await _window(session, hls) == ended
    assert ended[2].rstrip().endswith("#EXT-X-ENDLIST")


@pytest.mark.slow
async def test_the_flv_source_streams_video_and_audio_in_real_time(
    flv: FlvSource, tmp_path: Path
) -> None:
    assert is_listening(flv.port)
    out = tmp_path / "live.flv"
    began = time.monotonic()
    async with aiohttp.ClientSession() as session, session.get(flv.url) as response:
        assert response.status == 200
        with out.open("wb") as file:
            while time.monotonic() - began < 3.0:
                file.write(await response.content.readany())
    assert out.read_bytes()[:3] == b"FLV"
    assert probe(out).streams == {"video", "audio"}
    assert 2.0 <= last_packet_s(out) <= 3.5  # -re: about as much media as time went by
    for _ in range(50):  # its one client left: ffmpeg ends, as a room's stream does
        if not flv.is_running:
            break
        await asyncio.sleep(0.1)
    assert not flv.is_running
    await flv.restart()
    assert is_listening(flv.port) and flv.starts == 2
