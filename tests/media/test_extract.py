"""Extraction through yt-dlp (as a library, in a thread) from the loopback media site: what it
finds in each kind of media, the format requests, proxy and cookies, the log, and the errors of
real runs (bot wall, removed, closed port).

The site runs on the test's own event loop: every extraction that succeeds here is also proof
that the loop kept serving while yt-dlp ran in its thread."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from hauler.errors import (
    BadRequest,
    Bannable,
    BotCheck,
    ConnectionRefused,
    Fatal,
    HaulerError,
    NoMedia,
    NotFound,
    Transient,
)
from hauler.media.extract import ExtractOptions, extract
from hauler.media.formats import format_spec
from tests.media.library import MediaLibrary
from tests.media.site import CLIP_TITLES, MediaSite, media_site


async def test_direct_mp4(site: MediaSite) -> None:
    info = await extract(site.media_url("direct.mp4"))
    assert (info["id"], info["extractor_key"], info["_type"]) == ("direct", "Generic", "video")
    assert [(f["format_id"], f["ext"], f["url"]) for f in info["formats"]] == [
        ("mp4", "mp4", site.media_url("direct.mp4"))
    ]
    assert info["format_id"] == "mp4" and info["url"] == site.media_url("direct.mp4")
    assert info["direct"] is True


async def test_the_generic_extractor_finds_the_video_tag(site: MediaSite) -> None:
    info = await extract(site.url("/video.html"))
    assert info["extractor_key"] == "HTML5MediaEmbed"
    assert info["title"].startswith("Test pattern")
    assert [f["url"] for f in info["formats"]] == [site.media_url("direct.mp4")]
    assert info["webpage_url"] == site.url("/video.html")
    assert site.count("/video.html") == 1


async def test_hls_master_gives_a_format_per_variant(
    site: MediaSite, library: MediaLibrary
) -> None:
    info = await extract(site.media_url(library.hls_master))
    sizes = sorted((f["width"], f["height"]) for f in info["formats"])
    assert sizes == sorted(library.hls_variants)
    assert {f["protocol"] for f in info["formats"]} == {"m3u8_native"}
    assert all(
        f["vcodec"].startswith("avc1") and f["acodec"] == "mp4a.40.2" for f in info["formats"]
    )
    assert info["duration"] == pytest.approx(library.hls_duration_s, abs=0.1)
    assert (info["width"], info["height"]) == (320, 240)  # bv*+ba/b: the best variant
    assert site.count("/media/hls/v0/index.m3u8") >= 1  # read for the VOD duration


async def test_dash_gives_separate_video_and_audio(site: MediaSite, library: MediaLibrary) -> None:
    info = await extract(site.media_url(library.dash_manifest))
    video = [f for f in info["formats"] if f["vcodec"] != "none"]
    audio = [f for f in info["formats"] if f["vcodec"] == "none"]
    assert [(f["width"], f["height"], f["acodec"]) for f in video] == [(320, 240, "none")]
    assert [f["acodec"] for f in audio] == ["mp4a.40.2"]
    assert {f["protocol"] for f in info["formats"]} == {"http_dash_segments"}
    # The default format merges them: yt-dlp lists both under requested_formats.
    assert [f["format_id"] for f in info["requested_formats"]] == [
        video[0]["format_id"],
        audio[0]["format_id"],
    ]
    assert info["format_id"] == f"{video[0]['format_id']}+{audio[0]['format_id']}"


async def test_playlist_page_gives_an_entry_per_video(site: MediaSite) -> None:
    info = await extract(site.url("/playlist.html"))
    assert info["_type"] == "playlist"
    entries = info["entries"]
    assert [e["formats"][0]["url"] for e in entries] == [
        site.media_url(f"clip{n}.mp4") for n in (1, 2, 3)
    ]
    assert [e["id"] for e in entries] == ["playlist-1", "playlist-2", "playlist-3"]
    assert site.count("/media/clip1.mp4") == 0  # listed, not extracted one by one


async def test_rss_feed_gives_entries_with_titles_and_durations(
    site: MediaSite, library: MediaLibrary
) -> None:
    info = await extract(site.url("/feed.xml"))
    assert (info["_type"], info["title"]) == ("playlist", "Clips feed")
    entries = info["entries"]
    assert [e["title"] for e in entries] == list(CLIP_TITLES)
    assert [e["duration"] for e in entries] == [c.duration_s for c in library.clips]
    assert [e["url"].split("#")[0] for e in entries] == [
        site.media_url(c.name) for c in library.clips
    ]
    playlist = await extract(site.url("/feed.xml"), ExtractOptions(playlist_items="2"))
    assert [e["title"] for e in playlist["entries"]] == [CLIP_TITLES[1]]


@pytest.mark.parametrize(
    ("request_text", "size"),
    [("best", (320, 240)), ("worst", (160, 120)), ("200", (160, 120)), ("720", (320, 240))],
)
async def test_format_requests_pick_the_variant(
    site: MediaSite, library: MediaLibrary, request_text: str, size: tuple[int, int]
) -> None:
    options = ExtractOptions(format_spec=format_spec(request_text))
    info = await extract(site.media_url(library.hls_master), options)
    assert (info["width"], info["height"]) == size


async def test_audio_request_on_dash_picks_the_audio(
    site: MediaSite, library: MediaLibrary
) -> None:
    options = ExtractOptions(format_spec=format_spec("audio"))
    info = await extract(site.media_url(library.dash_manifest), options)
    assert (info["vcodec"], info["acodec"]) == ("none", "mp4a.40.2")
    assert "requested_formats" not in info


async def test_a_format_yt_dlp_cannot_read_fails_before_any_request(site: MediaSite) -> None:
    with pytest.raises(BadRequest, match="Invalid filter specification"):
        await extract(site.url("/video.html"), ExtractOptions(format_spec="b[height<=x]"))
    assert site.requests == []


async def test_no_format_matches_is_a_bad_request(site: MediaSite, library: MediaLibrary) -> None:
    options = ExtractOptions(format_spec="b[height>=1000]")
    with pytest.raises(BadRequest, match="Requested format is not available"):
        await extract(site.media_url(library.hls_master), options)


async def test_extractions_run_side_by_side(site: MediaSite, library: MediaLibrary) -> None:
    urls = [site.url("/video.html"), site.media_url(library.hls_master), site.url("/feed.xml")]
    infos = await asyncio.gather(*(extract(url) for url in urls))
    assert [i["webpage_url"] for i in infos] == urls


async def test_proxy_carries_every_request(library: MediaLibrary, site: MediaSite) -> None:
    # A second site as the HTTP proxy: it answers the absolute-form requests from the library.
    async with media_site(library.root) as proxy:
        info = await extract(site.url("/video.html"), ExtractOptions(proxy=proxy.base_url))
    assert info["formats"][0]["url"] == site.media_url("direct.mp4")
    assert proxy.count("/video.html") == 1 and site.requests == []
    assert proxy.requests[0].headers["Host"] == f"127.0.0.1:{site.port}"


async def test_cookies_and_headers_reach_the_site_not_the_log(
    site: MediaSite,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    cookie_file = tmp_path / "cookies.txt"
    text = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tcookie-s3cret\n"
    cookie_file.write_text(text)
    options = ExtractOptions(
        cookie_file=cookie_file, headers={"Authorization": "Bearer tok-s3cret"}
    )
    with caplog.at_level(logging.DEBUG, logger="hauler.media.ytdlp"):
        info = await extract(site.url("/video.html"), options)
    sent = next(r for r in site.requests if r.path == "/video.html").headers
    assert sent["Cookie"] == "sid=cookie-s3cret"
    assert sent["Authorization"] == "Bearer tok-s3cret"
    assert info["formats"][0]["url"] == site.media_url("direct.mp4")
    assert cookie_file.read_text() == text  # yt-dlp saves its jar on close: not into this file
    logged = [r.getMessage() for r in caplog.records if r.name == "hauler.media.ytdlp"]
    assert any("Extracting URL" in m for m in logged)
    assert not any("s3cret" in m for m in logged)
    # "Falling back on generic information extractor" says nothing to a hauler user: DEBUG.
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == []
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # yt-dlp wrote nothing to stdout or stderr


async def test_a_bad_cookie_file_is_one_line(site: MediaSite, tmp_path: Path) -> None:
    cookie_file = tmp_path / "cookies.txt"
    cookie_file.write_text('[{"name": "sid", "value": "x"}]\n')
    with pytest.raises(BadRequest) as caught:
        await extract(site.url("/video.html"), ExtractOptions(cookie_file=cookie_file))
    assert str(caught.value).startswith(f"{cookie_file} line 1:")
    assert "\n" not in str(caught.value) and site.requests == []


@pytest.mark.parametrize(
    ("path", "expected", "reason"),
    [
        ("/wall/bot", BotCheck, "Unable to download webpage: HTTP Error 403: Forbidden"),
        ("/wall/rate", BotCheck, "Unable to download webpage: HTTP Error 429: Too Many Requests"),
        ("/removed.html", NotFound, "Unable to download webpage: HTTP Error 404: Not Found"),
        ("/empty.html", NoMedia, "Unsupported URL: {url}"),
        (
            "/broken.html",
            Transient,
            "Unable to download webpage: HTTP Error 500: Internal Server Error",
        ),
    ],
)
async def test_real_failures_are_classed(
    site: MediaSite, path: str, expected: type[HaulerError], reason: str
) -> None:
    with pytest.raises(HaulerError) as caught:
        await extract(site.url(path))
    assert type(caught.value) is expected
    assert caught.value.message == reason.format(url=site.url(path))
    assert site.count(path) == 1  # one try: the fleet's retries are the store's, not yt-dlp's


async def test_the_three_outcomes_of_the_issue(site: MediaSite) -> None:
    with pytest.raises(Bannable):
        await extract(site.url("/wall/bot"))
    with pytest.raises(Fatal):
        await extract(site.url("/removed.html"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(Transient) as caught:
        await extract(f"http://127.0.0.1:{closed_port}/video.html")
    assert type(caught.value) is ConnectionRefused
    assert "Connection refused" in caught.value.message
