"""Playlists as ffmpeg writes them (a live window with dates and a discontinuity, a master
playlist with two variants) and the edge cases around them."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hauler.errors import Transient
from hauler.live.m3u8 import (
    BadPlaylist,
    MasterPlaylist,
    MediaPlaylist,
    attributes,
    parse,
    parse_master,
    parse_media,
)
from tests.live.stream import HlsStream
from tests.media.library import make_hls

BASE = "http://127.0.0.1:8000/live/index.m3u8"


@pytest.mark.slow
async def test_the_live_window_ffmpeg_writes(hls: HlsStream) -> None:
    await hls.wait_for_segments(2)
    await hls.restart()
    await hls.wait_for_segments(1)
    text = hls.playlist.read_text()
    playlist = parse_media(text, hls.url)
    segments = playlist.segments
    assert playlist.target_duration_s == 1.0 and not playlist.is_ended
    assert len(segments) == min(hls.list_size, len(hls.produced))
    assert [s.sequence for s in segments] == list(range(playlist.media_sequence, len(hls.produced)))
    assert [s.url for s in segments] == [
        f"http://127.0.0.1:{hls.port}/seg{s.sequence}.ts" for s in segments
    ]
    assert all(s.duration_s == hls.produced[s.sequence] for s in segments)
    # One discontinuity: where the second encoder's first segment begins.
    restarted = [s.sequence for s in segments if s.is_discontinuity]
    assert len(restarted) == 1 and text.count("#EXT-X-DISCONTINUITY") == 1
    # Dates: one second apart within an encoder, later across the restart.
    dates = [s.program_date_time for s in segments]
    assert all(date is not None for date in dates)
    for before, after in itertools.pairwise(segments):
        assert before.program_date_time is not None and after.program_date_time is not None
        step = after.program_date_time - before.program_date_time
        if after.is_discontinuity:
            assert step >= before.duration_s
        else:
            assert step == pytest.approx(before.duration_s, abs=0.01)
    await hls.end()
    ended = parse_media(hls.playlist.read_text(), hls.url)
    assert ended.is_ended and ended.last_sequence == max(hls.produced)


def test_a_master_playlist_ffmpeg_writes(tmp_path: Path) -> None:
    path = tmp_path / make_hls(tmp_path, 2.0)
    url = "http://127.0.0.1:9/media/hls/master.m3u8"
    master = parse_master(path.read_text(), url)
    assert [v.resolution for v in master.variants] == [(320, 240), (160, 120)]
    assert [v.url for v in master.variants] == [
        "http://127.0.0.1:9/media/hls/v0/index.m3u8",
        "http://127.0.0.1:9/media/hls/v1/index.m3u8",
    ]
    assert all(v.bandwidth > 0 and v.codecs for v in master.variants)
    assert master.variants[0].bandwidth > master.variants[1].bandwidth
    assert master.best() == master.variants[0]
    assert master.best(max_height=200) == master.variants[1]
    assert master.best(max_height=100) == master.variants[1]  # none fits: the smallest
    variant = parse_media((path.parent / "v1/index.m3u8").read_text(), master.variants[1].url)
    assert variant.is_ended and variant.playlist_type == "VOD"
    assert variant.segments[0].url == "http://127.0.0.1:9/media/hls/v1/seg0.ts"
    assert sum(s.duration_s for s in variant.segments) == pytest.approx(2.0, abs=0.1)


def test_attributes_with_quoted_commas_and_renditions() -> None:
    text = "\n".join(
        [
            "#EXTM3U",
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,'
            'URI="audio/en.m3u8"',
            '#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,CODECS="avc1.4d401f,'
            'mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="aud"',
            "https://cdn.example/720p.m3u8",
            "#EXT-X-STREAM-INF:BANDWIDTH=200000",
            "/low/index.m3u8",
        ]
    )
    master = parse(text, BASE)
    assert isinstance(master, MasterPlaylist)
    high, low = master.variants
    assert high.codecs == "avc1.4d401f,mp4a.40.2" and high.resolution == (1280, 720)
    assert high.frame_rate == pytest.approx(29.97) and high.audio == "aud"
    assert high.url == "https://cdn.example/720p.m3u8"
    assert low.url == "http://127.0.0.1:8000/low/index.m3u8" and low.resolution is None
    (audio,) = master.renditions
    assert (audio.type, audio.group_id, audio.language, audio.is_default) == (
        "AUDIO",
        "aud",
        "en",
        True,
    )
    assert audio.url == "http://127.0.0.1:8000/live/audio/en.m3u8"
    assert attributes('A=1,B="x,y",C=z') == {"A": "1", "B": "x,y", "C": "z"}


def test_dates_count_on_and_keys_maps_and_ranges_are_kept() -> None:
    text = "\n".join(
        [
            "\ufeff#EXTM3U",
            "#EXT-X-VERSION:7",
            "#EXT-X-TARGETDURATION:4",
            "#EXT-X-MEDIA-SEQUENCE:1000",
            "#EXT-X-DISCONTINUITY-SEQUENCE:3",
            "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:00:00Z",
            "#EXTINF:4.004,title, with a comma",
            "a.ts",
            "",
            '#EXT-X-PART:DURATION=1.0,URI="a.part.ts"',  # LL-HLS: skipped
            "#EXTINF:3.5,",
            "b.ts",
            "#EXT-X-DISCONTINUITY",
            '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"',
            '#EXT-X-MAP:URI="init.mp4"',
            "#EXT-X-BYTERANGE:1000@200",
            "#EXTINF:2,",
            "c.m4s",
            "# a comment",
        ]
    )
    playlist = parse_media(text, BASE)
    a, b, c = playlist.segments
    assert (playlist.media_sequence, playlist.last_sequence) == (1000, 1002)
    assert playlist.discontinuity_sequence == 3 and playlist.target_duration_s == 4.0
    assert [s.sequence for s in playlist.segments] == [1000, 1001, 1002]
    assert playlist.window_s == pytest.approx(9.504)
    assert a.program_date_time == 1714557600.0
    assert b.program_date_time == pytest.approx(1714557604.004)  # counted on from a's
    assert c.program_date_time is None  # not across a discontinuity
    assert c.is_discontinuity and not b.is_discontinuity
    assert (a.key_method, c.key_method) == (None, "AES-128")
    assert c.init_url == "http://127.0.0.1:8000/live/init.mp4" and a.init_url is None
    assert c.byte_range == (1000, 200) and a.byte_range is None


def test_an_empty_live_window_and_a_missing_target_duration() -> None:
    empty = parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n", BASE)
    assert empty.segments == () and empty.last_sequence == 6 and not empty.is_ended
    untimed = parse_media("#EXTM3U\n#EXTINF:9.5,\nx.ts\n#EXT-X-ENDLIST\n", BASE)
    assert untimed.target_duration_s == 9.5 and untimed.is_ended
    assert untimed.media_sequence == 0
    naive = parse_media(
        "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:00:00\n#EXTINF:1,\nx.ts", BASE
    )
    assert naive.segments[0].program_date_time == 1714557600.0  # no zone: UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html><body>502 Bad Gateway</body></html>",
        "#EXTM3U\nx.ts\n",  # a segment without EXTINF
        "#EXTM3U\n#EXTINF:abc,\nx.ts\n",
        "#EXTM3U\n#EXTINF:nan,\nx.ts\n",
        "#EXTM3U\n#EXTINF:-1,\nx.ts\n",
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-3\n",
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:²\n",
        "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n#EXTINF:1,\nx.ts\n",
    ],
)
def test_what_is_not_a_playlist_is_a_transient_bad_playlist(text: str) -> None:
    with pytest.raises(BadPlaylist) as raised:
        parse(text, BASE)
    assert isinstance(raised.value, Transient)
    assert "\n" not in raised.value.message


def test_the_wrong_kind_of_playlist_is_refused() -> None:
    with pytest.raises(BadPlaylist, match="master"):
        parse_media("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", BASE)
    with pytest.raises(BadPlaylist, match="media"):
        parse_master("#EXTM3U\n#EXTINF:1,\nx.ts\n", BASE)
    assert isinstance(parse("#EXTM3U\n", BASE), MediaPlaylist)
