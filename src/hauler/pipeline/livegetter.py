"""The live follower's ``Getter`` over hauler's own HTTP client (``AiohttpFetcher`` on the
engine's sessions): statuses and connection failures arrive as the error taxonomy, every
redirect hop passes the URL guard, and secret headers stay with the playlist's origin."""

from __future__ import annotations

from dataclasses import dataclass

from hauler.errors import TooLarge
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
