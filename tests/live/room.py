"""A live room's page on 127.0.0.1 (aiohttp): "not live yet" (a page with no video, which
yt-dlp's generic extractor answers with "Unsupported URL") until ``go_live(stream_url)``, then a
page whose ``<video src>`` is the stream (yt-dlp's HTML5 embed reader finds it); ``go_offline()``
takes the video away again.

Other routes: ``/missing`` answers 404, ``/wall`` 403 with a bot wall's words. ``requests``
logs every request's path, so a test counts the polls (``count("/room")``).

A notify receiver too: ``Receiver`` takes POSTed JSON at ``/hook`` (``events``), or answers
``status`` without reading it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import escape
from typing import Any

from aiohttp import web

TITLE = "Room 1"
OFFLINE_PAGE = f"<html><head><title>{TITLE}</title></head><body><p>Offline</p></body></html>"
BOT_WALL = "Sign in to confirm you\u2019re not a bot. This helps protect our community."


def live_page(stream_url: str) -> str:
    """The room's page while it is live: a video tag over the stream."""
    source = escape(stream_url, quote=True)
    return (
        f"<html><head><title>{TITLE}</title></head>"
        f'<body><video controls autoplay src="{source}"></video></body></html>'
    )


@dataclass(eq=False)
class RoomPage:
    """The running page: its URL, its request log, and the switch."""

    stream_url: str | None = None  # None: not live
    requests: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The room page's URL."""
        return f"http://127.0.0.1:{self.port}/room"

    def at(self, path: str) -> str:
        """The URL of another path of the site."""
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str = "/room") -> int:
        """How many requests asked for ``path``."""
        return sum(1 for logged in self.requests if logged == path)

    def go_live(self, stream_url: str) -> None:
        """Show the video from now on."""
        self.stream_url = stream_url

    def go_offline(self) -> None:
        """Show the page without a video from now on."""
        self.stream_url = None

    async def start(self) -> RoomPage:
        """Serve on a free 127.0.0.1 port."""
        app = web.Application()
        app.router.add_get("/room", self._room)
        app.router.add_get("/missing", self._missing)
        app.router.add_get("/wall", self._wall)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _room(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        text = OFFLINE_PAGE if self.stream_url is None else live_page(self.stream_url)
        return web.Response(text=text, content_type="text/html")

    async def _missing(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.Response(status=404, text="no such room")

    async def _wall(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.Response(status=403, text=f"<html><body>{BOT_WALL}</body></html>")


@contextlib.asynccontextmanager
async def room_page() -> AsyncIterator[RoomPage]:
    """A started ``RoomPage``, not live; closed on exit."""
    page = RoomPage()
    try:
        yield await page.start()
    finally:
        await page.close()


@dataclass(eq=False)
class Receiver:
    """A notify receiver: keeps the JSON POSTed to ``/hook``; answers ``status``."""

    status: int = 204
    redirect_to: str | None = None  # answer 307 with this Location instead
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, credentials: str = "") -> str:
        """The hook's URL (``credentials``: ``user:password@`` to put in it)."""
        return f"http://{credentials}127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        """Serve on a free 127.0.0.1 port."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        if self.redirect_to is not None:
            return web.Response(status=307, headers={"Location": self.redirect_to})
        if self.status >= 300:
            return web.Response(status=self.status, text="no")
        self.headers.append(dict(request.headers))
        self.events.append(json.loads(await request.read()))
        return web.Response(status=self.status)


@contextlib.asynccontextmanager
async def receiver(status: int = 204) -> AsyncIterator[Receiver]:
    """A started ``Receiver``; closed on exit."""
    hook = Receiver(status=status)
    try:
        yield await hook.start()
    finally:
        await hook.close()
