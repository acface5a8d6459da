"""The room watcher's decisions: room states from yt-dlp's live flags (and the flagless info
yt-dlp's HTML5 embed reader returns for a page with a live playlist), stream protocols, the
jittered poll schedule and the capped error backoff, all with seeded randomness."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest

from hauler.policy.watch import (
    JITTER,
    LIVE_TTL_S,
    MAX_BACKOFF_FACTOR,
    RoomState,
    cache_ttl_s,
    chosen_format,
    error_backoff_s,
    next_poll_s,
    room_state,
    stream_protocol,
)

# Recorded from yt-dlp 2026.10.26 (the fields that matter), tests/live/test_watch.py's page
# with <video src=".../live.m3u8">: extractor HTML5MediaEmbed, no live flags.
EMBED_PAGE_INFO: dict[str, Any] = {
    "_type": "video",
    "id": "room-1",
    "title": "Room 1 (1)",
    "is_live": None,
    "live_status": None,
    "protocol": "m3u8_native",
    "ext": "mp4",
    "url": "http://127.0.0.1:41093/live.m3u8",
    "extractor_key": "HTML5MediaEmbed",
    "formats": [{"format_id": "hls", "protocol": "m3u8_native", "ext": "mp4"}],
}
# The same playlist given directly: the generic extractor sees no ENDLIST and says live.
DIRECT_PLAYLIST_INFO: dict[str, Any] = {
    **EMBED_PAGE_INFO,
    "extractor_key": "Generic",
    "is_live": True,
    "live_status": "is_live",
}


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("is_live", RoomState.LIVE),
        ("is_upcoming", RoomState.UPCOMING),
        ("was_live", RoomState.ENDED),
        ("post_live", RoomState.ENDED),
        ("not_live", RoomState.OFFLINE),
    ],
)
def test_live_status_decides(status: str, state: RoomState) -> None:
    # live_status wins over an is_live that disagrees and over the stream's protocol.
    info = {**EMBED_PAGE_INFO, "live_status": status, "is_live": status != "is_live"}
    assert room_state(info) is state


def test_is_live_alone_decides() -> None:
    assert room_state({**EMBED_PAGE_INFO, "is_live": True}) is RoomState.LIVE
    assert room_state({**EMBED_PAGE_INFO, "is_live": False}) is RoomState.OFFLINE


def test_recorded_infos() -> None:
    assert room_state(EMBED_PAGE_INFO) is RoomState.LIVE
    assert room_state(DIRECT_PLAYLIST_INFO) is RoomState.LIVE


def test_flagless_page_needs_a_live_capable_stream() -> None:
    mp4 = {"url": "http://h/v.mp4", "protocol": "https", "ext": "mp4"}
    flv = {"url": "http://h/live/room.flv?token=1", "protocol": "http", "ext": "flv"}
    assert room_state(mp4) is RoomState.OFFLINE
    assert room_state({"formats": []}) is RoomState.OFFLINE
    assert room_state({}) is RoomState.OFFLINE
    assert room_state(flv) is RoomState.LIVE
    assert room_state({"formats": [mp4, flv]}) is RoomState.LIVE  # the best (last) is FLV


@pytest.mark.parametrize(
    ("fmt", "protocol"),
    [
        ({"protocol": "m3u8_native", "ext": "mp4", "url": "http://h/a.m3u8"}, "hls"),
        ({"protocol": "m3u8", "ext": "mp4", "url": "http://h/a"}, "hls"),
        ({"ext": "m3u8", "url": "http://h/a"}, "hls"),
        ({"protocol": "https", "ext": "flv", "url": "https://h/a"}, "flv"),
        ({"protocol": "http", "ext": "unknown_video", "url": "http://h/x.flv?k=v"}, "flv"),
        ({"url": "http://h/live/x.flv"}, "flv"),
        ({"protocol": "https", "ext": "mp4", "url": "https://h/a.mp4"}, None),
        ({"protocol": "http_dash_segments", "ext": "mp4", "url": "https://h/a.mpd"}, None),
        ({"protocol": "rtmp", "ext": "flv", "url": "rtmp://h/live"}, None),
        ({}, None),
    ],
)
def test_stream_protocol(fmt: dict[str, str], protocol: str | None) -> None:
    assert stream_protocol(fmt) == protocol


def test_chosen_format() -> None:
    listed = [{"url": "http://h/1.m3u8"}, {"url": "http://h/2.m3u8"}]
    assert chosen_format({"url": "http://h/top"})["url"] == "http://h/top"
    assert chosen_format({"requested_formats": [listed[0]], "formats": listed}) is listed[0]
    assert chosen_format({"formats": listed}) is listed[1]
    assert chosen_format({"formats": [{"format_id": "no url"}]}) == {}


def test_poll_schedule_is_jittered_around_poll_s() -> None:
    rng = random.Random(7)
    delays = [next_poll_s(30.0, rng) for _ in range(2000)]
    assert min(delays) >= 30.0 * (1 - JITTER)
    assert max(delays) <= 30.0 * (1 + JITTER)
    assert statistics.mean(delays) == pytest.approx(30.0, rel=0.02)
    # Spread out: a fleet's watchers do not poll in step.
    assert statistics.pstdev(delays) > 2.0
    # The same seed, the same schedule.
    again = random.Random(7)
    assert [next_poll_s(30.0, again) for _ in range(2000)] == delays


def test_error_backoff_doubles_then_caps() -> None:
    rng = random.Random(3)
    poll_s = 2.0
    cap_s = MAX_BACKOFF_FACTOR * poll_s
    for failures in range(1, 4):
        ceiling = poll_s * 2**failures
        draws = [error_backoff_s(poll_s, failures, rng) for _ in range(500)]
        assert min(draws) >= ceiling * (1 - JITTER)
        assert max(draws) <= ceiling * (1 + JITTER)
    late = [error_backoff_s(poll_s, failures, rng) for failures in range(4, 60) for _ in range(20)]
    assert max(late) <= cap_s
    assert min(late) >= cap_s * (1 - JITTER) / (1 + JITTER)
    assert statistics.pstdev(late) > 0.5  # still spread at the cap


def test_cache_ttls() -> None:
    # A watcher's own next poll (at least 0.8 x poll_s away) never reads its own answer back.
    assert cache_ttl_s(30.0, RoomState.OFFLINE) == pytest.approx(30.0 * (1 - JITTER))
    assert cache_ttl_s(30.0, RoomState.UPCOMING) == pytest.approx(30.0 * (1 - JITTER))
    assert cache_ttl_s(0.5, RoomState.LIVE) == pytest.approx(0.5 * (1 - JITTER))
    assert cache_ttl_s(300.0, RoomState.LIVE) == LIVE_TTL_S
