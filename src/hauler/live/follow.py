"""The HLS live follower: load the playlist, fetch each new segment once (several at once when
behind), write them into parts, note the gaps, reconnect after failures, and end on
``#EXT-X-ENDLIST``, the offline grace or the maximum duration, or when asked to stop.

Every decision is ``policy.live.FollowPolicy``'s; this module does the I/O around it: HTTP
through an injected ``Getter`` (the caller's client, its errors already the taxonomy's), time
through the ``Clock``, files through ``parts.PartWriter``. A new part begins at a discontinuity,
after a gap, when the stream's numbering starts over and when a segment's first timestamp
(``ts.first_pts_s``) does not follow on from the one before (an encoder restarted without
saying so), so that each part's timestamps run on and its duration is the sum of its
segments'.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from hauler.clock import Clock
from hauler.errors import BadRequest, HaulerError, Stalled
from hauler.live import m3u8, ts
from hauler.live.parts import ClosedPart, PartWriter
from hauler.policy.live import (
    Action,
    EndReason,
    FollowPolicy,
    Gap,
    LiveRules,
    Plan,
    Window,
    timestamps_run_on,
)
from hauler.redact import redact_url

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# A request with no complete answer by then is a stall: reconnect (the window keeps moving).
REQUEST_TIMEOUT_S = 10.0


class Getter(Protocol):
    """HTTP GET as the follower needs it."""

    async def get(self, url: str) -> bytes:
        """The whole body of a GET of ``url``; on failure the ``HaulerError`` taxonomy only
        (``NotFound`` for 404, ``Transient`` for 5xx, ``ConnectionFailed`` for a reset…)."""
        ...


PartSink = Callable[[ClosedPart], Awaitable[None]]


class FollowState(StrEnum):
    """What the follower is doing."""

    STARTING = "starting"
    RECORDING = "recording"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Recording:
    """How a recording went: its parts (in order), gaps, why it ended, and its totals."""

    parts: tuple[ClosedPart, ...]
    gaps: tuple[Gap, ...]
    end: EndReason
    recorded_s: float
    bytes: int
    segments: int
    last_sequence: int | None

    @property
    def missing_s(self) -> float:
        """The media of every gap."""
        return sum(gap.missing_s for gap in self.gaps)


class Progress(Protocol):
    """What a recorder's policy knows of its progress (``FollowPolicy``, ``ReconnectPolicy``)."""

    @property
    def recorded_s(self) -> float:
        """The media recorded so far."""
        ...

    @property
    def gaps(self) -> Sequence[Gap]:
        """The gaps so far, in order."""
        ...


@dataclass(frozen=True, slots=True)
class FollowStatus:
    """A snapshot for a progress display."""

    state: FollowState
    recorded_s: float
    bytes: int
    part_index: int | None
    gaps: int

    @classmethod
    def of(cls, state: FollowState, progress: Progress, writer: PartWriter) -> FollowStatus:
        """The snapshot of a recorder in ``state`` whose policy is ``progress`` and whose parts
        ``writer`` writes."""
        part = writer.current
        return cls(
            state,
            progress.recorded_s,
            writer.bytes_written,
            part.index if part else None,
            len(progress.gaps),
        )


class HlsFollower:
    """Records one live HLS playlist (a media playlist, or a master one: its ``best`` variant no
    taller than ``max_height``) into ``writer``'s parts.

    ``on_part`` is awaited with each part as it closes (to probe, rename and list it). ``run``
    returns the ``Recording`` once the stream ended or ``stop()`` was called, every part closed
    and reported; on an error or a cancel the open part is still closed and flushed (it is in
    ``writer.closed``), but not reported, and the error goes on up.
    """

    def __init__(
        self,
        url: str,
        getter: Getter,
        clock: Clock,
        writer: PartWriter,
        rules: LiveRules,
        *,
        on_part: PartSink | None = None,
        resume_after: int | None = None,
        max_height: int | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.getter = getter
        self.clock = clock
        self.writer = writer
        self.policy = FollowPolicy(rules, clock.monotonic(), resume_after=resume_after)
        self.on_part = on_part
        self.max_height = max_height
        self.request_timeout_s = request_timeout_s
        self.state = FollowState.STARTING
        self.last_sequence: int | None = None
        self._stop = asyncio.Event()
        self._needs_cut = False
        self._playlist_url = url
        # The last segment's first timestamp (None: unknown) and duration.
        self._last_start: tuple[float | None, float] = (None, 0.0)

    def stop(self) -> None:
        """Ask the recording to end: the current part is closed and reported, ``run`` returns."""
        self._stop.set()

    def status(self) -> FollowStatus:
        """Where the recording is now."""
        return FollowStatus.of(self.state, self.policy, self.writer)

    async def run(self) -> Recording:
        """Record until the stream ends or ``stop()``; the ``Recording``."""
        try:
            end = await self._follow()
        except BaseException:
            await self.writer.close()
            raise
        finally:
            self.state = FollowState.ENDED
        await self._report(await self.writer.close())
        _log.info("recording of %s ended: %s", redact_url(self.url), end.value)
        return Recording(
            parts=tuple(self.writer.closed),
            gaps=tuple(self.policy.gaps),
            end=end,
            recorded_s=self.policy.recorded_s,
            bytes=self.writer.bytes_written,
            segments=self.policy.fetched,
            last_sequence=self.last_sequence,
        )

    # --- the loop ------------------------------------------------------------------------------

    async def _follow(self) -> EndReason:
        """Load, fetch, wait; again, until an end. Bounded by the policy's ends: the offline
        grace (a dead or stalled stream) and the maximum duration."""
        while not self._stop.is_set():
            loaded_at = self.clock.monotonic()
            try:
                playlist = await self._load()
            except HaulerError as error:
                end = await self._after_failure(error)
                if end is not None:
                    return end
                continue
            self.state = FollowState.RECORDING
            plan = self.policy.on_playlist(window_of(playlist), self.clock.monotonic())
            if plan.gap is not None or plan.is_reset:
                self._needs_cut = True
            await self._fetch(plan, playlist)
            end = self.policy.end_reason(self.clock.monotonic())
            if end is not None:
                return end
            wait_s = self.policy.next_load_at(loaded_at, plan.is_changed) - self.clock.monotonic()
            await self.clock.wait_for(self._stop, wait_s)
        return EndReason.STOPPED

    async def _after_failure(self, error: HaulerError) -> EndReason | None:
        """Wait as the policy says after a failed load; the end, when it says it is one."""
        decision = self.policy.on_failure(error, self.clock.monotonic())
        if decision.action is Action.FAIL:
            raise error
        if decision.action is Action.END:
            return decision.reason
        self.state = FollowState.RECONNECTING
        _log.info(
            "playlist %s failed (%s), again in %.1f s",
            redact_url(self._playlist_url),
            error.message,
            decision.delay_s,
        )
        await self.clock.wait_for(self._stop, decision.delay_s)
        return None

    async def _load(self) -> m3u8.MediaPlaylist:
        """The media playlist now (a master playlist's variant chosen once, on first sight)."""
        text = await self._get(self._playlist_url)
        playlist = m3u8.parse(text.decode("utf-8", "replace"), self._playlist_url)
        if isinstance(playlist, m3u8.MasterPlaylist):
            variant = playlist.best(self.max_height)
            if variant is None:
                raise BadRequest(f"{redact_url(self.url)}: a master playlist without variants")
            if self._playlist_url != self.url:
                raise BadRequest(f"{redact_url(self.url)}: a variant is a master playlist")
            self._playlist_url = variant.url
            text = await self._get(self._playlist_url)
            playlist = m3u8.parse_media(text.decode("utf-8", "replace"), self._playlist_url)
        _require_plain_ts(playlist)
        return playlist

    # --- segments ------------------------------------------------------------------------------

    async def _fetch(self, plan: Plan, playlist: m3u8.MediaPlaylist) -> None:
        """Fetch the plan's segments, ``plan.parallel`` ahead at most, and write them in order."""
        segments = {segment.sequence: segment for segment in playlist.segments}
        pending = iter(plan.fetch)
        running: deque[tuple[m3u8.Segment, asyncio.Task[bytes | None]]] = deque()
        try:
            for _ in range(plan.parallel):
                self._start_next(pending, segments, running)
            while running and not self._stop.is_set():
                segment, task = running.popleft()
                data = await task
                if data is None and self._stop.is_set():
                    break  # given up because of the stop: not a gap
                self._start_next(pending, segments, running)
                await self._commit(segment, data)
        finally:
            await _cancel_all(task for _, task in running)

    def _start_next(
        self,
        pending: Iterator[int],
        segments: dict[int, m3u8.Segment],
        running: deque[tuple[m3u8.Segment, asyncio.Task[bytes | None]]],
    ) -> None:
        sequence = next(pending, None)
        if sequence is not None:
            segment = segments[sequence]
            running.append((segment, asyncio.ensure_future(self._segment(segment))))

    async def _segment(self, segment: m3u8.Segment) -> bytes | None:
        """The segment's bytes, tried as the policy says; None when it is given up."""
        for tries in range(1, self.policy.rules.segment_tries + 1):
            try:
                return await self._get(segment.url)
            except HaulerError as error:
                decision = self.policy.on_segment_failure(error, tries)
                if decision.action is Action.FAIL:
                    raise
                _log.info("segment %d: %s (try %d)", segment.sequence, error.message, tries)
                if decision.action is not Action.RETRY:
                    break
                if await self.clock.wait_for(self._stop, decision.delay_s):
                    break
        return None

    async def _commit(self, segment: m3u8.Segment, data: bytes | None) -> None:
        """Write a fetched segment (a new part first when its timestamps may not run on), or
        count a given-up one as missing."""
        if data is None:
            self.policy.on_missed(segment.sequence)
            self._needs_cut = True
            return
        duration = self.policy.on_fetched(segment.sequence)
        runs_on = self._runs_on(data, duration)  # noted for every segment, cut or not
        if segment.is_discontinuity or self._needs_cut or not runs_on:
            self._needs_cut = False
            await self._report(await self.writer.cut())
        started_at = segment.program_date_time or self.clock.now()
        closed = await self.writer.append(data, duration, started_at, segment.sequence)
        self.last_sequence = segment.sequence
        await self._report(closed)

    def _runs_on(self, data: bytes, duration_s: float) -> bool:
        """Do the segment's timestamps follow on from the previous one's (as far as known)?"""
        start_s = ts.first_pts_s(data)
        previous, self._last_start = self._last_start, (start_s, duration_s)
        if start_s is None or previous[0] is None:
            return True
        return timestamps_run_on(previous[0], previous[1], start_s)

    async def _report(self, part: ClosedPart | None) -> None:
        if part is not None and self.on_part is not None:
            await self.on_part(part)

    async def _get(self, url: str) -> bytes:
        """``getter.get(url)``, given up as ``Stalled`` after ``request_timeout_s`` on the
        clock."""
        return await _within(self.clock, self.request_timeout_s, self.getter.get(url), url)


def window_of(playlist: m3u8.MediaPlaylist) -> Window:
    """The policy's view of a media playlist."""
    segments = playlist.segments
    return Window(
        first_sequence=playlist.media_sequence,
        durations_s=tuple(segment.duration_s for segment in segments),
        target_duration_s=playlist.target_duration_s,
        is_ended=playlist.is_ended,
        dates=tuple(segment.program_date_time for segment in segments),
    )


def _require_plain_ts(playlist: m3u8.MediaPlaylist) -> None:
    """Refuse what parts of concatenated segments cannot hold (yet), in one line."""
    for segment in playlist.segments:
        if segment.key_method is not None:
            raise BadRequest(f"the stream is encrypted ({segment.key_method}): not recorded")
        if segment.init_url is not None or segment.byte_range is not None:
            raise BadRequest("fMP4 or byte-range HLS segments are not recorded yet (MPEG-TS only)")


async def _within(clock: Clock, timeout_s: float, work: Coroutine[Any, Any, _T], url: str) -> _T:
    """``work``'s result, or ``Stalled`` once ``timeout_s`` passed on ``clock`` (``work`` is
    cancelled then, and when the caller is)."""
    task = asyncio.ensure_future(work)
    finished = asyncio.Event()
    task.add_done_callback(lambda _: finished.set())
    try:
        if not await clock.wait_for(finished, timeout_s):
            raise Stalled(f"{redact_url(url)}: no answer within {timeout_s:g} s")
        return task.result()
    finally:
        await _cancel_all([task])


async def _cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks still running and wait until they are done. Their errors are taken
    (nobody waits for their results any more); a cancel of the caller still goes through."""
    waiting = list(tasks)
    for task in waiting:
        task.cancel()
    if waiting:
        await asyncio.wait(waiting)
    for task in waiting:
        if not task.cancelled():
            task.exception()
