"""The room watcher: polls a room page through yt-dlp until it is live, and says where its
stream is.

Each poll asks the info cache first, under ``live:<normalised url>``: a fresh answer another
watcher (another worker of the fleet) stored there spares this one the extraction. A "not live"
answer is kept for the shortest poll interval, a "live" one (with its stream URL and headers)
for that and at most ``policy.watch.LIVE_TTL_S``; only this small record is cached, not the
info dict. The cache is an optimisation: a cache that fails costs a warning, never the watch.

What a poll can find (``policy.watch.room_state`` and ``media.livestatus``):

- live, with an HLS or FLV stream: ``wait_live`` returns it as a ``LiveStream``;
- offline, upcoming, ended (a ``NotLive`` error or the info's flags), or a page with no media
  yet (yt-dlp's "Unsupported URL", ``NoMedia``: logged once at INFO, then DEBUG): poll again
  after ``policy.watch.next_poll_s``;
- a transient failure (network, 5xx, throttling): poll again after the backoff of
  ``policy.watch.error_backoff_s``;
- a bot wall (``BotCheck``) or a fatal answer (404, forbidden, a live stream in a protocol we
  cannot record): raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hauler.clock import Clock
from hauler.errors import BadRequest, Bannable, HaulerError, NoMedia, Throttled, Transient
from hauler.gate import OPEN, RequestGate
from hauler.media.extract import ExtractOptions
from hauler.media.extract import extract as ytdlp_extract
from hauler.media.formats import format_spec
from hauler.media.livestatus import not_live, state_of
from hauler.models import LiveOptions, normalise_url
from hauler.pipeline.handler import JobRun
from hauler.policy.watch import (
    RoomState,
    StreamProtocol,
    cache_ttl_s,
    chosen_format,
    error_backoff_s,
    next_poll_s,
    room_state,
    stream_protocol,
)
from hauler.redact import redact_url
from hauler.store.base import InfoCache

_log = logging.getLogger(__name__)

Extract = Callable[[str, ExtractOptions], Awaitable[dict[str, Any]]]

# A live recording follows one stream: the best single format, not a video + audio merge.
LIVE_FORMAT = "b"
CACHE_KEY_PREFIX = "live:"


@dataclass(frozen=True, slots=True)
class LiveStream:
    """Where a live room's stream is: its URL, protocol, the headers yt-dlp says to send with
    every request for it, and the room's title and id."""

    url: str
    protocol: StreamProtocol
    headers: Mapping[str, str] = field(default_factory=dict)
    title: str | None = None
    id: str | None = None
    is_cached: bool = False  # found in the info cache (another watcher's poll)

    def record(self) -> dict[str, Any]:
        """The JSON form kept in the info cache."""
        return {
            "url": self.url,
            "protocol": self.protocol,
            "headers": dict(self.headers),
            "title": self.title,
            "id": self.id,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LiveStream | None:
        """The stream a cached record names; None for a record that is not one."""
        url, protocol = record.get("url"), record.get("protocol")
        if not isinstance(url, str) or protocol not in ("hls", "flv"):
            return None
        headers = record.get("headers")
        return cls(
            url=url,
            protocol="hls" if protocol == "hls" else "flv",
            headers={str(k): str(v) for k, v in (headers or {}).items()},
            title=_text(record.get("title")),
            id=_text(record.get("id")),
            is_cached=True,
        )


@dataclass(frozen=True, slots=True)
class Poll:
    """What one poll found: the room's state and, when live, its stream."""

    state: RoomState
    stream: LiveStream | None = None
    is_cached: bool = False


class RoomWatcher:
    """Polls ``url`` every ``poll_s`` (jittered) until it is live; see the module docstring."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        poll_s: float,
        extract: Extract = ytdlp_extract,
        cache: InfoCache | None = None,
        cache_key_prefix: str = CACHE_KEY_PREFIX,
        rng: random.Random | None = None,
        format: str | None = None,
        options: ExtractOptions | None = None,
        gate: RequestGate = OPEN,
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self.url = url
        self._clock = clock
        self._poll_s = poll_s
        self._extract = extract
        self._cache = cache
        self._key = f"{cache_key_prefix}{normalise_url(url)}"
        self._rng = rng or random.Random()
        spec = format_spec(format) if format else LIVE_FORMAT
        self._options = replace(options or ExtractOptions(), format_spec=spec)
        self._has_logged_no_media = False
        # An extraction asks it first, as one request: a room's host budget paces the polls
        # of every worker, and a cooldown holds them.
        self._gate = gate
        self.polls = 0  # polls made (cached or not)
        self.extractions = 0  # polls that ran yt-dlp

    @classmethod
    def for_job(
        cls,
        job: JobRun,
        options: LiveOptions,
        clock: Clock,
        *,
        cache: InfoCache | None = None,
        rng: random.Random | None = None,
        gate: RequestGate = OPEN,
    ) -> RoomWatcher:
        """The watcher of a ``live`` job's room: its poll interval and format, its headers and
        the proxy lent to it."""
        extract_options = ExtractOptions(proxy=job.resources.proxy, headers=job.headers)
        return cls(
            job.spec.url,
            clock,
            poll_s=options.poll_s,
            cache=cache,
            rng=rng,
            format=options.format,
            options=extract_options,
            gate=gate,
        )

    async def wait_live(self, stop: asyncio.Event) -> LiveStream | None:
        """The room's stream once it is live; None when ``stop`` was set first. Raises the
        taxonomy's error for a bot wall or a fatal answer."""
        failures = 0
        while not stop.is_set():
            try:
                found = await self.poll()
            except Transient as exc:
                failures += 1
                delay_s = error_backoff_s(self._poll_s, failures, self._rng)
                _log.info(
                    "polling %s failed (%s): next poll in %.1f s",
                    redact_url(self.url),
                    exc.message,
                    delay_s,
                )
            else:
                if found.stream is not None:
                    return found.stream
                failures = 0
                delay_s = next_poll_s(self._poll_s, self._rng)
            if await self._clock.wait_for(stop, delay_s):
                break
        return None

    async def poll(self) -> Poll:
        """One poll: the cache's fresh answer, else an extraction (its answer cached)."""
        self.polls += 1
        cached = await self._cached()
        if cached is not None:
            return cached
        found = await self._extracted()
        await self._remember(found)
        return found

    async def _extracted(self) -> Poll:
        self.extractions += 1
        ticket = await self._gate.enter(self.url, self._options.proxy)
        try:
            info = await self._extract(self.url, self._options)
        except Throttled as exc:
            await ticket.throttled(exc.retry_after_s)
            return self._not_live(exc)
        except HaulerError as exc:
            return self._not_live(exc)
        finally:
            ticket.close()
        return self._from_info(info)

    def _not_live(self, exc: HaulerError) -> Poll:
        """A poll's failure as a not-live answer, or raised (see the module docstring)."""
        if isinstance(exc, Bannable):
            raise exc
        found = not_live(exc)
        if found is not None:
            _log.debug("%s is not live: %s", redact_url(self.url), found.message)
            return Poll(state_of(found))
        if isinstance(exc, NoMedia):
            level = logging.DEBUG if self._has_logged_no_media else logging.INFO
            self._has_logged_no_media = True
            _log.log(level, "%s shows no stream yet: %s", redact_url(self.url), exc.message)
            return Poll(RoomState.OFFLINE)
        raise exc

    def _from_info(self, info: Mapping[str, Any]) -> Poll:
        state = room_state(info)
        if state is not RoomState.LIVE:
            return Poll(state)
        fmt = chosen_format(info)
        protocol = stream_protocol(fmt)
        if protocol is None:
            what = fmt.get("protocol") or fmt.get("ext") or "no format"
            raise BadRequest(f"{redact_url(self.url)} is live in {what}: only HLS and FLV record")
        headers = fmt.get("http_headers") or info.get("http_headers") or {}
        stream = LiveStream(
            url=str(fmt["url"]),
            protocol=protocol,
            headers={str(k): str(v) for k, v in headers.items()},
            title=_text(info.get("title")),
            id=_text(info.get("id")),
        )
        return Poll(state, stream)

    async def _cached(self) -> Poll | None:
        if self._cache is None:
            return None
        try:
            record = await self._cache.get_info(self._key)
        except HaulerError as exc:
            _log.warning("live status cache unreadable: %s", exc.message)
            return None
        if record is None:
            return None
        try:
            state = RoomState(str(record.get("state")))
        except ValueError:
            return None
        stream = LiveStream.from_record(record.get("stream") or {})
        if state is RoomState.LIVE and stream is None:
            return None
        return Poll(state, stream, is_cached=True)

    async def _remember(self, found: Poll) -> None:
        if self._cache is None:
            return
        record = {
            "state": str(found.state),
            "stream": found.stream.record() if found.stream else None,
        }
        try:
            await self._cache.put_info([self._key], record, cache_ttl_s(self._poll_s, found.state))
        except HaulerError as exc:
            _log.warning("live status not cached: %s", exc.message)


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
