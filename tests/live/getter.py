"""``hauler.live.follow.Getter`` over hauler's own HTTP client: ``transfer.fetch.AiohttpFetcher``
on ``net.Sessions``, so statuses and connection failures arrive as the error taxonomy, every
redirect hop passes the URL guard, and secret headers stay with the playlist's origin.

``FetcherGetter`` is the pipeline's (``hauler.pipeline.livegetter``); this gives the tests one
on sessions of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from hauler.clock import Clock, SystemClock
from hauler.config import TransferSettings
from hauler.net import Sessions
from hauler.pipeline.livegetter import FetcherGetter
from hauler.transfer.fetch import AiohttpFetcher


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
