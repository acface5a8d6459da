"""``hauler.live.follow.Getter`` over hauler's own HTTP client: ``transfer.fetch.AiohttpFetcher``
on ``net.Sessions``, so statuses and connection failures arrive as the error taxonomy, every
redirect hop passes the URL guard, and secret headers stay with the playlist's origin.

The pipeline's LiveHandler composes the same thing with the job's proxy, headers and the
worker's sessions (this file is the recipe, in the tests until the handler has its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hauler.clock import Clock, SystemClock
from hauler.config import TransferSettings
from hauler.errors import TooLarge
from hauler.net import Sessions
from hauler.redact import redact_url
from hauler.transfer.fetch import AiohttpFetcher

# A playlist is kilobytes and a segment a few MB; past this something is wrong with the URL.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FetcherGetter:
    """Whole bodies of GETs through an ``AiohttpFetcher``."""

    fetcher: AiohttpFetcher
    max_bytes: int = MAX_BODY_BYTES

    async def get(self, url: str) -> bytes:
        """The body of a GET of ``url``; the hauler.errors taxonomy for any failure."""
        body, _ = await self.fetcher.open(url, None)
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := await body.read():
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(f"{redact_url(url)} is over {self.max_bytes} bytes")
                chunks.append(chunk)
        finally:
            body.close()
        return b"".join(chunks)


@asynccontextmanager
async def fetcher_getter(
    home_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    settings: TransferSettings | None = None,
) -> AsyncIterator[FetcherGetter]:
    """A ``FetcherGetter`` on sessions of its own, closed on exit."""
    settings = settings or TransferSettings(read_timeout_s=10.0, connect_timeout_s=5.0)
    sessions = Sessions(settings, environ={})
    fetcher = AiohttpFetcher(
        sessions=sessions,
        headers=dict(headers or {}),
        proxy=None,
        clock=clock or SystemClock(),
        settings=settings,
        home_url=home_url,
    )
    try:
        yield FetcherGetter(fetcher)
    finally:
        await sessions.close()
