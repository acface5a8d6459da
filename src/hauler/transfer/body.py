"""The fetch boundary's types: what the engine asks for, what it gets back, and the protocols
an HTTP client implements (``fetch.AiohttpFetcher`` today).

Nothing here imports an HTTP library: ``download``, ``probe`` and the rest of ``transfer/``
depend on these protocols, and only ``fetch.py`` (with ``hauler.net``) knows aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hauler.transfer.partfile import Validators


@dataclass(frozen=True, slots=True)
class Reply:
    """What a 200/206 answer says about its body and the file."""

    status: int
    final_url: str
    start: int  # file offset of the body's first byte
    length: int | None  # body bytes promised (None: until the connection or chunks end)
    validators: Validators
    accepts_ranges: bool
    content_disposition: str | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class RangeAsk:
    """A request for ``[start, end)`` (``end`` None: to the end), pinned by ``if_range``."""

    start: int = 0
    end: int | None = None
    if_range: str | None = None

    def headers(self) -> dict[str, str]:
        """The Range and If-Range headers."""
        last = "" if self.end is None else str(self.end - 1)
        headers = {"Range": f"bytes={self.start}-{last}"}
        if self.if_range:
            headers["If-Range"] = self.if_range
        return headers


class Body(Protocol):
    """An answer's body, read as it arrives."""

    async def read(self) -> bytes:
        """The next bytes that arrived (b"" at the end of the body); the client's errors come
        out as the hauler.errors taxonomy (a cut or reset: ``ConnectionFailed``, ...)."""
        ...

    def close(self) -> None:
        """Let the connection go (unread bytes are not drained: it is not reused)."""
        ...

    def abort(self) -> None:
        """Make a pending or next ``read`` fail now (as a cut body) and drop the connection:
        how the endgame takes over a slow lane and the supervisor cuts a stalled one."""
        ...


class Fetcher(Protocol):
    """Opens GETs for one request (its headers, proxy and URL guard)."""

    async def open(self, url: str, ask: RangeAsk | None) -> tuple[Body, Reply]:
        """GET ``url`` for ``ask`` (None: the whole file, no Range), following redirects; a
        200/206 answer's body, unread, and what the answer says. Other statuses and the
        client's errors raise the hauler.errors taxonomy."""
        ...
