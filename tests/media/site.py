"""A loopback media site (aiohttp.web on 127.0.0.1, a free port) over a ``MediaLibrary``.

Routes:

- ``/media/<file>``: the library's files with their real Content-Types (video/mp4,
  application/vnd.apple.mpegurl, application/dash+xml, video/mp2t, video/iso.segment) and Range
  support (aiohttp's FileResponse; under a rate cap, a paced ranged stream of our own);
- ``/video.html``: a page with a ``<video>`` tag for ``direct.mp4`` (yt-dlp's generic extractor);
- ``/playlist.html``: a page with three ``<video>`` tags (the clips), which yt-dlp expands
  into a playlist of three entries; ``/feed.xml``: an RSS feed of the same clips, with titles,
  guids and itunes durations;
- ``/wall/bot``: 403 with YouTube's "Sign in to confirm you're not a bot" page (its
  apostrophe is U+2019);
  ``/wall/rate``: 429 with a Retry-After; ``/removed.html``: 404 "Video unavailable. This video
  has been removed by the uploader"; ``/empty.html``: 200, a page without any video;
  ``/broken.html``: 500.

``rate_bytes_s`` caps each response of ``/media/`` (so each connection) to that many bytes per
second; ``requests`` logs every request (method, path, Range, status) so that tests can count
what was fetched: ``site.count("/media/hls/master.m3u8")``.

Standalone: ``python -m tests.media.site DIR [--build] [--port 0] [--rate BYTES_S]`` prints
``PORT <n>`` on stdout, then serves DIR until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from html import escape
from pathlib import Path

from aiohttp import web

from tests.media.library import build_library

CONTENT_TYPES: Mapping[str, str] = {
    ".mp4": "video/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".html": "text/html; charset=utf-8",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
}
CHUNK_BYTES = 16 * 1024
# YouTube's own words (its apostrophe is U+2019), as yt-dlp quotes them in its error.
BOT_WALL_TEXT = "Sign in to confirm you\u2019re not a bot. This helps protect our community."
REMOVED_TEXT = "Video unavailable. This video has been removed by the uploader."
CLIP_TITLES = ("Red sine", "Green sine", "Blue sine")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the site answered."""

    method: str
    path: str
    range: str | None
    status: int
    headers: Mapping[str, str]


@dataclass
class MediaSite:
    """The running site: its base URL, its request log and the rate cap (changeable live)."""

    root: Path
    rate_bytes_s: int | None = None
    requests: list[LoggedRequest] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``/video.html``, ``/media/direct.mp4``)."""
        return self.base_url + "/" + path.lstrip("/")

    def media_url(self, name: str) -> str:
        """The URL of a library file (``direct.mp4``, ``hls/master.m3u8``)."""
        return self.url(f"/media/{name}")

    def count(self, path: str) -> int:
        """How many requests asked for ``path``."""
        return sum(1 for r in self.requests if r.path == path)

    async def start(self, port: int = 0) -> MediaSite:
        """Listen on 127.0.0.1 (a free port unless given)."""
        app = web.Application()
        app.on_response_prepare.append(self._log)
        app.router.add_get("/media/{name:.+}", self._media)
        for path, handler in self._pages().items():
            app.router.add_get(path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _log(self, request: web.Request, response: web.StreamResponse) -> None:
        # On prepare, not in a middleware: a FileResponse sets its status (206) as it prepares.
        headers = dict(request.headers)
        wanted = request.headers.get("Range")
        entry = LoggedRequest(request.method, request.path, wanted, response.status, headers)
        self.requests.append(entry)

    def _pages(self) -> dict[str, Handler]:
        return {
            "/video.html": self._video_page,
            "/extras.html": self._extras_page,
            "/playlist.html": self._playlist_page,
            "/feed.xml": self._feed,
            "/wall/bot": self._bot_wall,
            "/wall/rate": self._rate_wall,
            "/removed.html": self._removed,
            "/empty.html": self._empty,
            "/broken.html": self._broken,
        }

    async def _media(self, request: web.Request) -> web.StreamResponse:
        path = (self.root / request.match_info["name"]).resolve()
        if not path.is_file() or not path.is_relative_to(self.root.resolve()):
            raise web.HTTPNotFound()
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        if self.rate_bytes_s is None:
            return web.FileResponse(path, headers={"Content-Type": content_type})
        return await _paced_file(request, path, content_type, self.rate_bytes_s)

    async def _video_page(self, request: web.Request) -> web.Response:
        body = (
            '<video controls width="160"><source src="/media/direct.mp4" type="video/mp4"></video>'
        )
        return _html("Test pattern", body)

    async def _extras_page(self, request: web.Request) -> web.Response:
        body = (
            '<video controls poster="/media/poster.jpg">'
            '<source src="/media/direct.mp4" type="video/mp4">'
            '<track kind="subtitles" src="/media/direct.en.vtt" srclang="en" label="English">'
            "</video>"
        )
        return _html("With extras", body)

    async def _playlist_page(self, request: web.Request) -> web.Response:
        videos = "\n".join(
            f'<video controls src="/media/clip{n}.mp4"></video>'
            for n in range(1, len(CLIP_TITLES) + 1)
        )
        return _html("Three clips", videos)

    async def _feed(self, request: web.Request) -> web.Response:
        items = "".join(
            _rss_item(self.media_url(f"clip{n}.mp4"), title, f"clip-{n}", n + 1)
            for n, title in enumerate(CLIP_TITLES, start=1)
        )
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel><title>Clips feed</title><description>Three clips</description>{items}"
            "</channel></rss>"
        )
        return web.Response(text=text, content_type="application/rss+xml")

    async def _bot_wall(self, request: web.Request) -> web.Response:
        return _html("YouTube", f"<p>{escape(BOT_WALL_TEXT)}</p>", status=403)

    async def _rate_wall(self, request: web.Request) -> web.Response:
        response = _html(
            "Too Many Requests", "<p>Too many requests. Try again later.</p>", status=429
        )
        response.headers["Retry-After"] = "60"
        return response

    async def _removed(self, request: web.Request) -> web.Response:
        return _html("Video unavailable", f"<p>{escape(REMOVED_TEXT)}</p>", status=404)

    async def _empty(self, request: web.Request) -> web.Response:
        return _html("Nothing to see", "<p>No video on this page.</p>")

    async def _broken(self, request: web.Request) -> web.Response:
        return _html("Internal Server Error", "<p>Something broke.</p>", status=500)


def _html(title: str, body: str, status: int = 200) -> web.Response:
    head = f"<head><title>{escape(title)}</title></head>"
    text = f"<!DOCTYPE html><html>{head}<body>{body}</body></html>"
    return web.Response(text=text, status=status, content_type="text/html")


def _rss_item(url: str, title: str, guid: str, duration_s: int) -> str:
    return (
        f"<item><title>{escape(title)}</title><guid>{guid}</guid>"
        f'<enclosure url="{escape(url)}" type="video/mp4" length="0"/>'
        f"<itunes:duration>{duration_s}</itunes:duration></item>"
    )


async def _paced_file(
    request: web.Request, path: Path, content_type: str, rate_bytes_s: int
) -> web.StreamResponse:
    """``path`` (or the requested range of it) at no more than ``rate_bytes_s``."""
    size = path.stat().st_size
    try:
        wanted = request.http_range
    except ValueError:
        unsatisfiable = {"Content-Range": f"bytes */{size}"}
        raise web.HTTPRequestRangeNotSatisfiable(headers=unsatisfiable) from None
    start, stop = _bounds(wanted, size)
    if start >= stop:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    is_partial = request.headers.get("Range") is not None
    response = web.StreamResponse(status=206 if is_partial else 200)
    response.headers.update(
        {
            "Content-Type": content_type,
            "Accept-Ranges": "bytes",
            "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True),
        }
    )
    if is_partial:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    response.content_length = stop - start
    await response.prepare(request)
    await _send_paced(response, path, start, stop, rate_bytes_s)
    await response.write_eof()
    return response


def _bounds(wanted: slice, size: int) -> tuple[int, int]:
    start = wanted.start if wanted.start is not None else 0
    if start < 0:  # a suffix range: the last -start bytes
        start = max(0, size + start)
    stop = min(size, wanted.stop) if wanted.stop is not None else size
    return start, stop


async def _send_paced(
    response: web.StreamResponse, path: Path, start: int, stop: int, rate_bytes_s: int
) -> None:
    began = time.monotonic()
    sent = 0
    with path.open("rb") as handle:
        handle.seek(start)
        while sent < stop - start:
            chunk = handle.read(min(CHUNK_BYTES, stop - start - sent))
            await response.write(chunk)
            sent += len(chunk)
            # Ahead of the cap: wait until the bytes sent are due.
            ahead_s = sent / rate_bytes_s - (time.monotonic() - began)
            if ahead_s > 0:
                await asyncio.sleep(ahead_s)


@contextlib.asynccontextmanager
async def media_site(root: Path, rate_bytes_s: int | None = None) -> AsyncIterator[MediaSite]:
    """A started ``MediaSite`` over ``root``, closed on exit."""
    site = await MediaSite(root, rate_bytes_s).start()
    try:
        yield site
    finally:
        await site.close()


async def _serve(root: Path, port: int, rate_bytes_s: int | None) -> None:
    site = await MediaSite(root, rate_bytes_s).start(port)
    print(f"PORT {site.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await site.close()


def main() -> None:
    """Serve a library directory until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--build", action="store_true", help="make the media into ROOT first")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=int, default=None, help="bytes/s per connection")
    args = parser.parse_args()
    if args.build:
        build_library(args.root)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.root, args.port, args.rate))


if __name__ == "__main__":
    main()
