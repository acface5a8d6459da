"""The transfer engine: one shared object that downloads many files at once.

It holds what is shared across downloads (the aiohttp sessions with their connection pools,
keep-alive and DNS cache, the overall rate limiter, the retry policy); each ``download`` is a
cheap ``Download`` attempt on top of them, restarted from zero when the origin changed or
turned out to ignore ranges mid-file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from hauler.clock import Clock, SystemClock
from hauler.config import TransferSettings
from hauler.errors import RangeIgnored, RestartTransfer
from hauler.gate import OPEN, RequestGate
from hauler.net import Sessions, check_url
from hauler.policy.retry import RetryPolicy
from hauler.transfer.attempt import AttemptContext, OutputPaths
from hauler.transfer.controlfiles import ControlFiles
from hauler.transfer.download import Download
from hauler.transfer.fetch import AiohttpFetcher
from hauler.transfer.request import NullProgress, ProgressSink, TransferRequest, TransferResult
from hauler.transfer.throttle import TokenBucket

_log = logging.getLogger(__name__)

# How many times one download starts over (changed origin, ranges ignored) before giving up.
MAX_RESTARTS = 2


class Engine:
    """Downloads files over HTTP(S); share one per process (``async with Engine(...)``)."""

    def __init__(
        self,
        settings: TransferSettings,
        clock: Clock | None = None,
        gate: RequestGate = OPEN,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        # Every request asks it first (the fleet's per-host budgets, ``pools.hostgate``).
        self.gate = gate
        self.policy = RetryPolicy(base_s=settings.retry_base_s, cap_s=settings.retry_cap_s)
        self._sessions = Sessions(settings)
        self.paths = OutputPaths()
        self.control_files = ControlFiles()
        # The partials this process's downloads hold, by path: whose (``marks.url_key``) each
        # is, so that a download racing another URL's to one free name takes the next one.
        self.parts_in_use: dict[Path, str] = {}
        self._overall = (
            TokenBucket(settings.limit_rate_bps, self.clock) if settings.limit_rate_bps else None
        )

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the sessions and their connections."""
        await self._sessions.close()

    async def download(
        self, request: TransferRequest, progress: ProgressSink | None = None
    ) -> TransferResult:
        """Download ``request.url`` into a verified file under ``request.output_dir``.

        Raises only the hauler.errors taxonomy (see the module docs of ``hauler.errors``).
        """
        await check_url(request.url, self.settings)
        sink = progress or NullProgress()
        is_ranged = True
        restarts = 0
        while True:
            try:
                attempt = self.attempt(request)
                return await Download(attempt, request, sink, is_ranged=is_ranged).run()
            except RestartTransfer as exc:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise
                _log.info("starting over (%d/%d): %s", restarts, MAX_RESTARTS, exc.message)
                is_ranged = is_ranged and not isinstance(exc, RangeIgnored)

    def attempt(self, request: TransferRequest) -> AttemptContext:
        """The context of one attempt at ``request``: the shared parts and its rate limiters."""
        return AttemptContext(
            settings=self.settings,
            clock=self.clock,
            policy=self.policy,
            control_files=self.control_files,
            paths=self.paths,
            parts_in_use=self.parts_in_use,
            buckets=self.buckets(request),
            fetcher=self.fetcher,
        )

    def fetcher(self, request: TransferRequest) -> AiohttpFetcher:
        """A fetcher with ``request``'s headers and proxy on the right shared session."""
        return AiohttpFetcher(
            sessions=self._sessions,
            headers=dict(request.headers),
            proxy=request.proxy or self.settings.proxy,
            clock=self.clock,
            settings=self.settings,
            home_url=request.url,
            gate=self.gate,
        )

    def buckets(self, request: TransferRequest) -> tuple[TokenBucket, ...]:
        """The rate limiters a download must respect: overall and its own."""
        own = (TokenBucket(request.limit_rate_bps, self.clock),) if request.limit_rate_bps else ()
        return (self._overall, *own) if self._overall else own
