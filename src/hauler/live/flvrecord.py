"""The HTTP-FLV live recorder: one long GET of the stream, its tags written into parts, a
reconnect at once (then backing off) after every drop, a new part on every reconnect, and an
end on the offline grace, the maximum duration or ``stop()``.

Each part is a playable FLV file on its own: the FLV header, the latest ``onMetaData``, the
video and audio sequence headers seen so far, then the tags from a video key frame on, their
timestamps rebased so that the part starts at 0. A part is split at the first key frame once
it holds ``split_s`` of media (counted by the tags' timestamps), so it never begins with a
frame that cannot be decoded.

Every decision is ``policy.reconnect.ReconnectPolicy``'s; HTTP goes through an injected
``Streamer`` (the caller's client, its errors already the taxonomy's), time through the
``Clock`` (a read with no bytes for ``read_timeout_s`` is a stall: a drop), files through
``parts.PartWriter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hauler.clock import Clock
from hauler.errors import ConnectionFailed, HaulerError, Stalled
from hauler.live.flv import FlvReader, FlvTag, TagType, header_bytes, tag_bytes, without_totals
from hauler.live.follow import FollowState, FollowStatus, PartSink, Recording
from hauler.live.parts import ClosedPart, PartWriter
from hauler.policy.live import Action, EndReason, LiveRules
from hauler.policy.reconnect import ReconnectPolicy
from hauler.redact import redact_url

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

READ_TIMEOUT_S = 10.0
# A part's first media after this much audio with no video at all starts without a key frame
# (an audio-only stream whose header announces video too).
AUDIO_ONLY_AFTER_MS = 3000


class ChunkStream(Protocol):
    """A response body read as it arrives."""

    async def read(self) -> bytes:
        """The next bytes (b"" at the end of the body); failures as the taxonomy."""
        ...


class Streamer(Protocol):
    """A streaming HTTP GET as the recorder needs it."""

    def open(self, url: str) -> AbstractAsyncContextManager[ChunkStream]:
        """GET ``url``: the body of a 200 answer, closed on exit; any other status or failure
        as the ``HaulerError`` taxonomy (``NotFound`` for 404, ``Forbidden`` for 401/403/400,
        ``Transient`` for 5xx, ``ConnectionRefused``, ``ConnectionFailed`` for a reset…)."""
        ...


@dataclass(slots=True)
class _Part:
    """The part being built: where its timestamps start, how far they got, bytes to write."""

    base_ms: int
    last_ms: int = 0
    started_at: float = 0.0
    pending: bytearray | None = None
    pending_s: float = 0.0


class FlvRecorder:
    """Records one HTTP-FLV URL into ``writer``'s parts (``writer``: ``extension="flv"`` and
    ``split_s=math.inf``: the recorder splits, at key frames, every ``split_s``).

    ``on_part`` is awaited with each part as it closes. ``run`` returns the ``Recording``
    once the stream stayed away for the offline grace, reached the maximum duration or
    ``stop()`` was called, every part closed and reported; a final failure (401/403/400, not
    FLV, a local error) closes the open part (in ``writer.closed``) and goes on up.
    """

    def __init__(
        self,
        url: str,
        streamer: Streamer,
        clock: Clock,
        writer: PartWriter,
        rules: LiveRules,
        *,
        split_s: float,
        on_part: PartSink | None = None,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        if not math.isinf(writer.split_s):
            raise ValueError("the FLV recorder splits parts itself: give it split_s=math.inf")
        if split_s <= 0 or read_timeout_s <= 0:
            raise ValueError("split_s and read_timeout_s must be positive")
        self.url = url
        self.streamer = streamer
        self.clock = clock
        self.writer = writer
        self.split_s = split_s
        self.on_part = on_part
        self.read_timeout_s = read_timeout_s
        self.policy = ReconnectPolicy(rules, clock.monotonic())
        self.state = FollowState.STARTING
        self.tags = 0
        self._stop = asyncio.Event()
        self._waking: asyncio.Event | None = None
        self._part: _Part | None = None
        self._metadata: FlvTag | None = None
        self._headers: dict[TagType, FlvTag] = {}
        self._has_audio = self._has_video = True
        self._first_audio_ms: int | None = None  # this connection's first audio tag

    def stop(self) -> None:
        """Ask the recording to end: the current part is closed and reported, ``run`` returns."""
        self._stop.set()
        if self._waking is not None:
            self._waking.set()

    def status(self) -> FollowStatus:
        """Where the recording is now."""
        return FollowStatus.of(self.state, self.policy, self.writer)

    async def run(self) -> Recording:
        """Record until the stream is gone, full or stopped; the ``Recording``."""
        try:
            end = await self._record()
        except BaseException:
            self._part = None
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
            segments=self.tags,
            last_sequence=None,
        )

    # --- connections ---------------------------------------------------------------------------

    async def _record(self) -> EndReason:
        """Connect, record, reconnect; until an end. Bounded by the policy's ends: a stream
        away for the offline grace, the maximum duration."""
        while not self._stop.is_set():
            try:
                end = await self._connection()
            except HaulerError as error:
                drop: HaulerError = error
            else:
                if end is not None:
                    return end
                drop = ConnectionFailed(f"{redact_url(self.url)}: the stream ended")
            await self._close_part()  # a reconnect starts a new part
            if self._stop.is_set():
                break
            decision = self.policy.on_drop(drop, self.clock.monotonic())
            if decision.action is Action.FAIL:
                raise drop
            if decision.action is Action.END:
                assert decision.reason is not None
                return decision.reason
            self.state = FollowState.RECONNECTING
            _log.info(
                "%s: %s, again in %.1f s", redact_url(self.url), drop.message, decision.delay_s
            )
            await self.clock.wait_for(self._stop, decision.delay_s)
        return EndReason.STOPPED

    async def _connection(self) -> EndReason | None:
        """One GET, its tags recorded until it ends (None), or the recording does (its end)."""
        async with contextlib.AsyncExitStack() as stack:
            body = await self._bounded(stack.enter_async_context(self.streamer.open(self.url)))
            if body is None:
                return EndReason.STOPPED
            reader = FlvReader()
            self._first_audio_ms = None
            while chunk := await self._bounded(body.read()):
                end = await self._take(reader, chunk)
                if end is not None:
                    return end
            return EndReason.STOPPED if self._stop.is_set() else None
        raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack may swallow)

    async def _bounded(self, work: Coroutine[Any, Any, _T]) -> _T | None:
        """``work``'s result; None when ``stop()`` came first; ``Stalled`` when neither came
        within ``read_timeout_s`` on the clock. ``work`` is cancelled then."""
        task = asyncio.ensure_future(work)
        self._waking = waking = asyncio.Event()
        task.add_done_callback(lambda _: waking.set())
        if self._stop.is_set():
            waking.set()
        try:
            if not await self.clock.wait_for(waking, self.read_timeout_s):
                where = redact_url(self.url)
                raise Stalled(f"{where}: no data within {self.read_timeout_s:g} s")
            return task.result() if task.done() else None
        finally:
            self._waking = None
            if not task.done():
                task.cancel()
                await asyncio.wait([task])

    # --- tags ----------------------------------------------------------------------------------

    async def _take(self, reader: FlvReader, chunk: bytes) -> EndReason | None:
        """Record the tags ``chunk`` completed; the end when the recording is full."""
        tags = reader.feed(chunk)
        if reader.header is not None:
            self._has_audio, self._has_video = reader.header.has_audio, reader.header.has_video
        for tag in tags:
            if not tag.is_media:
                self._keep(tag)
                continue
            if self._is_split(tag):
                await self._close_part()
            if self._add(tag) and self.policy.is_full(self._pending_s()):
                await self._flush()
                return EndReason.MAX_DURATION
        await self._flush()
        return None

    def _keep(self, tag: FlvTag) -> None:
        """A script tag or sequence header: kept for the parts to come; a changed sequence
        header goes into the current part too (the decoder's configuration changed)."""
        if tag.is_metadata:
            self._metadata = without_totals(tag)
        elif tag.is_sequence_header:
            previous = self._headers.get(tag.kind)
            self._headers[tag.kind] = tag
            part = self._part
            if part is not None and previous is not None and previous.data != tag.data:
                self._append(part, tag_bytes(tag, part.last_ms), 0.0)

    def _is_split(self, tag: FlvTag) -> bool:
        """Does ``tag`` begin a new part: a key frame at ``split_s`` or more into the part?"""
        part = self._part
        if part is None or not tag.is_keyframe:
            return False
        return tag.timestamp_ms - part.base_ms >= self.split_s * 1000

    def _add(self, tag: FlvTag) -> bool:
        """Add a media tag to the part (opening one at a key frame); False when it was passed
        over (no part can begin with it)."""
        part = self._part or self._open(tag)
        if part is None:
            return False
        timestamp = max(0, tag.timestamp_ms - part.base_ms)
        duration_s = max(0, timestamp - part.last_ms) / 1000
        part.last_ms = max(part.last_ms, timestamp)
        self._append(part, tag_bytes(tag, timestamp), duration_s)
        self.tags += 1
        return True

    def _open(self, tag: FlvTag) -> _Part | None:
        """A new part beginning with ``tag`` (a key frame; any frame of a stream without
        video): its header, metadata and sequence headers first. None when ``tag`` cannot
        begin one."""
        has_video = self._has_video or TagType.VIDEO in self._headers
        if has_video and not tag.is_keyframe and not self._is_audio_only(tag):
            return None
        part = _Part(base_ms=tag.timestamp_ms, started_at=self.clock.now())
        head = [header_bytes(self._has_audio, self._has_video)]
        for kept in (self._metadata, *self._headers.values()):
            if kept is not None:
                head.append(tag_bytes(kept, 0))
        self._append(part, b"".join(head), 0.0)
        self._part = part
        return part

    def _is_audio_only(self, tag: FlvTag) -> bool:
        """No video for ``AUDIO_ONLY_AFTER_MS`` of audio: record the audio without waiting."""
        if TagType.VIDEO in self._headers or tag.kind is not TagType.AUDIO:
            return False
        if self._first_audio_ms is None:
            self._first_audio_ms = tag.timestamp_ms
        return tag.timestamp_ms - self._first_audio_ms >= AUDIO_ONLY_AFTER_MS

    def _append(self, part: _Part, data: bytes, duration_s: float) -> None:
        if part.pending is None:
            part.pending = bytearray()
        part.pending += data
        part.pending_s += duration_s

    def _pending_s(self) -> float:
        return self._part.pending_s if self._part is not None else 0.0

    async def _flush(self) -> None:
        """Write the part's pending bytes (one write per chunk read, not per tag)."""
        part = self._part
        if part is None or part.pending is None:
            return
        data, duration_s = bytes(part.pending), part.pending_s
        part.pending, part.pending_s = None, 0.0
        gap = self.policy.on_media(duration_s, self.clock.monotonic())
        if gap is not None:
            _log.info("%s: %.1f s missing after a reconnect", redact_url(self.url), gap.missing_s)
        self.state = FollowState.RECORDING
        await self.writer.append(data, duration_s, part.started_at)

    async def _close_part(self) -> None:
        """Write what is pending and close the part (reported)."""
        await self._flush()
        self._part = None
        await self._report(await self.writer.cut())

    async def _report(self, part: ClosedPart | None) -> None:
        if part is not None and self.on_part is not None:
            await self.on_part(part)
