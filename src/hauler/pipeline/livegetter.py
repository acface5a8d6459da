"""The live recorders' HTTP over hauler's own client (``AiohttpFetcher`` on the engine's
sessions): the HLS follower's ``Getter`` (whole bodies) and the FLV recorder's ``Streamer`` (a
body read as it arrives). Statuses and connection failures arrive as the error taxonomy, every
redirect hop passes the URL guard, and secret headers stay with the stream's origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hauler.errors import TooLarge
from hauler.live.flvrecord import ChunkStream
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


@dataclass(frozen=True, slots=True)
class FetcherStreamer:
    """Streaming GETs through an ``AiohttpFetcher`` (``live.flvrecord.Streamer``): a body's
    chunks as they arrive, for as long as the stream lasts."""

    fetcher: AiohttpFetcher

    @asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[ChunkStream]:
        """The body of a GET of ``url`` (``read()`` gives its chunks, b"" at its end), closed
        on exit; the hauler.errors taxonomy for any failure, reading included."""
        body, _ = await self.fetcher.open(url, None)
        try:
            yield body
        finally:
            body.close()
