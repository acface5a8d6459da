"""The loopback media site and its library: real media (ffprobe reads what ffmpeg made), the
right Content-Types, Range, the rate cap and the request log."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import aiohttp

from tests.media.library import MediaLibrary
from tests.media.site import BOT_WALL_TEXT, MediaSite, media_site


def ffprobe(path: Path) -> dict[str, object]:
    """ffprobe's streams and format of ``path`` (JSON)."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_library_is_real_media(library: MediaLibrary) -> None:
    probe = ffprobe(library.root / library.direct.name)
    streams = probe["streams"]
    assert isinstance(streams, list)
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]
    video = next(s for s in streams if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (library.direct.width, library.direct.height)
    assert isinstance(probe["format"], dict)
    assert abs(float(probe["format"]["duration"]) - library.direct.duration_s) < 0.1
    for clip in library.clips:
        duration = ffprobe(library.root / clip.name)["format"]
        assert isinstance(duration, dict)
        assert abs(float(duration["duration"]) - clip.duration_s) < 0.1
    master = (library.root / library.hls_master).read_text()
    assert master.count("#EXT-X-STREAM-INF") == 2
    assert "RESOLUTION=320x240" in master and "RESOLUTION=160x120" in master
    manifest = (library.root / library.dash_manifest).read_text()
    assert 'contentType="video"' in manifest and 'contentType="audio"' in manifest


async def test_content_types_range_and_log(site: MediaSite, library: MediaLibrary) -> None:
    expected = {
        "direct.mp4": "video/mp4",
        library.hls_master: "application/vnd.apple.mpegurl",
        library.dash_manifest: "application/dash+xml",
        "hls/v0/seg0.ts": "video/mp2t",
    }
    async with aiohttp.ClientSession() as session:
        for name, content_type in expected.items():
            async with session.get(site.media_url(name)) as response:
                assert response.status == 200
                assert response.content_type == content_type
                assert await response.read() == (library.root / name).read_bytes()
        async with session.get(site.media_url("direct.mp4"), headers={"Range": "bytes=10-19"}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 10-19/{library.direct.size}"
            assert await r.read() == (library.root / "direct.mp4").read_bytes()[10:20]
        async with session.get(site.url("/video.html")) as response:
            assert response.content_type == "text/html"
            assert '<video controls width="160">' in await response.text()
        async with session.get(site.url("/wall/bot")) as response:
            assert response.status == 403
            assert "confirm you\u2019re not a bot" in await response.text()
            assert BOT_WALL_TEXT.startswith("Sign in")
        async with session.get(site.url("/wall/rate")) as response:
            assert (response.status, response.headers["Retry-After"]) == (429, "60")
    assert site.count("/media/direct.mp4") == 2
    ranged = [r for r in site.requests if r.path == "/media/direct.mp4" and r.range]
    assert [(r.range, r.status) for r in ranged] == [("bytes=10-19", 206)]
    assert site.count("/wall/bot") == 1 and site.requests[-2].status == 403


async def test_rate_cap_paces_each_response(library: MediaLibrary) -> None:
    rate = 200 * 1024
    async with media_site(library.root, rate_bytes_s=rate) as site, aiohttp.ClientSession() as s:
        began = time.monotonic()
        async with s.get(site.media_url("direct.mp4")) as response:
            body = await response.read()
        elapsed = time.monotonic() - began
        headers = {"Range": "bytes=1000-"}
        async with s.get(site.media_url("direct.mp4"), headers=headers) as response:
            assert response.status == 206
            tail = await response.read()
    assert hashlib.sha256(body).hexdigest() == library.direct.sha256
    assert tail == (library.root / "direct.mp4").read_bytes()[1000:]
    # ~70 KiB at 200 KiB/s: about a third of a second, never much faster than the cap.
    assert elapsed >= library.direct.size / rate * 0.8
    assert elapsed < library.direct.size / rate + 2.0
