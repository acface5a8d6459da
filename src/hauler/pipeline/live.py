"""The handler of live jobs: find the stream, record it into parts until it ends, and for a
monitor job (``watch``) go back to waiting for the next session.

A job's URL is a live HLS playlist, an HTTP-FLV stream, or a room page that yt-dlp reads
(polled until it is live, ``livewatch.RoomWatcher``). ``live/follow.HlsFollower`` and
``live/flvrecord.FlvRecorder`` record; ``live/parts.PartWriter`` cuts the parts. Each part, as
it closes, is checked with ffprobe and renamed into place by the pipeline's own verify and
finalize (remuxed first when asked), listed in the ``LiveLedger`` and saved on the running job,
so a recording of hours leaves its finished parts in place and in the store as it goes, and a
worker that takes the job over continues it (``liveledger``). A stop request (SIGTERM, Ctrl-C)
closes the open part, lands it, and raises ``Interrupted``: the job goes back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from hauler.clock import Clock, SystemClock
from hauler.errors import Interrupted, LeaseLost, NotLive
from hauler.live.follow import FollowStatus, HlsFollower, Recording
from hauler.live.parts import PartWriter
from hauler.models import JobKind, LiveOptions
from hauler.naming import name_from_response, safe_name
from hauler.pipeline.handler import JobRun
from hauler.pipeline.livegetter import FetcherGetter
from hauler.pipeline.liveland import PartLander
from hauler.pipeline.liveledger import LiveLedger
from hauler.pipeline.outcome import Outcome
from hauler.policy.live import EndReason, LiveRules
from hauler.progress import live_events_of
from hauler.redact import redact_url
from hauler.store.base import InfoCache
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest

_log = logging.getLogger(__name__)
# How often a recording's progress (bytes, state, part) reaches the display and the meter.
STATUS_EVERY_S = 1.0
# Playlist names that say nothing of the stream: the parts take the directory's name too.
_GENERIC_STEMS = frozenset({"live", "index", "playlist", "master", "stream", "chunklist", "prog"})


class Recorder(Protocol):
    """What records one session: HLS followers and FLV recorders alike."""

    def stop(self) -> None:
        """End the session: its open part is closed and reported."""
        ...

    def status(self) -> FollowStatus:
        """Where the session is now."""
        ...

    async def run(self) -> Recording:
        """Record until the stream ends or ``stop()``."""
        ...


@dataclass(frozen=True, slots=True)
class StreamSource:
    """A stream to record: its URL, how it is carried (``hls`` or ``flv``), headers to send."""

    url: str
    protocol: str
    headers: dict[str, str]
    title: str | None = None


class LiveHandler:
    """Runs ``live`` jobs; the engine's sessions fetch playlists, segments and streams."""

    def __init__(
        self, engine: Engine, clock: Clock | None = None, *, cache: InfoCache | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()
        # Where room pages' answers are shared: fifty workers watching one room poll it
        # about once per interval between them, not fifty times.
        self._cache = cache

    async def run(self, job: JobRun) -> Outcome:
        """Record until the stream ends (ENDLIST, offline past the grace, the max duration);
        a monitor job only when stopped. ``Interrupted`` when stopped before the end."""
        started = time.monotonic()
        options = job.spec.live or LiveOptions()
        ledger = LiveLedger.from_previous(job.continuation.previous)
        lander = PartLander(job, options, ledger, self._engine.settings)
        try:
            end = await self._record(job, options, lander)
        finally:
            await lander.drain_notices()
        if lander.is_lost:
            raise LeaseLost(f"the job was taken away with {len(ledger.parts)} parts in place")
        if end is None:
            raise Interrupted(f"recording stopped with {len(ledger.parts)} parts in place")
        return Outcome(
            kind=JobKind.LIVE,
            url=job.spec.url,
            final_url=job.spec.url,
            artifacts=tuple(lander.artifacts),
            bytes_fetched=lander.bytes_fetched,
            elapsed_s=time.monotonic() - started,
            details=ledger.record(end),
        )

    async def _record(self, job: JobRun, options: LiveOptions, lander: PartLander) -> str | None:
        """Sessions until the stream ends (one, unless ``watch``); how it ended, or None when
        stopped first (the ledger saved with every part in place)."""
        ledger, stop = lander.ledger, job.continuation.stop
        await lander.adopt_orphan()
        # The first session picks the stream up after the last segment an earlier attempt
        # wrote, when the window still has the next: missing ones before it are a gap. A later
        # session (``watch``) also skips what was recorded, but nothing before it is missing:
        # the room was off the air.
        is_first = True
        end = "stopped"
        while not stop.is_set():
            source = await self._find(job, options)
            if source is None:
                break
            recording = await self._session(job, source, options, lander, is_first=is_first)
            is_first = False
            end = recording.end.value
            if not options.watch or stop.is_set():
                break
            ledger.state = "waiting"
            await lander.save()
            live_events_of(job.progress).live_state("waiting", None, ledger.recorded_s)
            await self._clock.wait_for(stop, options.poll_s)
        ledger.state = "ended"
        if stop.is_set() and (options.watch or end == EndReason.STOPPED.value):
            await lander.save()
            return None
        if end == EndReason.OFFLINE.value and not ledger.parts:
            # Never on the air within the grace: tried again later, failed after max_attempts.
            raise NotLive(
                f"{redact_url(job.spec.url)}: nothing to record, the stream did not answer "
                f"within the offline grace ({options.offline_grace_s:g} s)"
            )
        return end

    async def _find(self, job: JobRun, options: LiveOptions) -> StreamSource | None:
        """The stream to record now: the job's URL itself when it names a playlist or an FLV
        stream; otherwise the room page polled until it is live (None: stopped meanwhile)."""
        protocol = protocol_of(job.spec.url)
        if protocol is not None:
            return StreamSource(job.spec.url, protocol, job.headers)
        from hauler.pipeline.livewatch import RoomWatcher  # yt-dlp only for room pages

        watcher = RoomWatcher.for_job(
            job, options, self._clock, cache=self._cache, gate=self._engine.gate
        )
        live_events_of(job.progress).live_state("waiting", None, 0.0)
        found = await watcher.wait_live(job.continuation.stop)
        if found is None:
            return None
        # yt-dlp's headers (a Referer, its User-Agent) first: the job's own win.
        headers = {**found.headers, **job.headers}
        return StreamSource(found.url, found.protocol, headers, found.title)

    async def _session(
        self,
        job: JobRun,
        source: StreamSource,
        options: LiveOptions,
        lander: PartLander,
        *,
        is_first: bool,
    ) -> Recording:
        """One live session recorded; its parts landed and its gaps in the ledger."""
        ledger = lander.ledger
        lander.begin_session(source)
        writer = PartWriter(
            job.output_dir,
            _base_name(job, source),
            split_s=options.split_s if source.protocol == "hls" else float("inf"),
            extension="ts" if source.protocol == "hls" else "flv",
            first_index=ledger.next_index,
            on_open=lambda part: lander.opened(part, writer),
            on_append=lander.appended if source.protocol == "hls" else None,
        )
        recorder = self._recorder(
            job, source, writer, options=options, lander=lander, resume_after=ledger.last_sequence
        )
        stopper = asyncio.ensure_future(_stop_on(job.continuation.stop, recorder))
        ticker = asyncio.ensure_future(_report_status(job, recorder, ledger, self._clock))
        try:
            recording = await recorder.run()
        finally:
            for task in (stopper, ticker):
                task.cancel()
            await asyncio.wait({stopper, ticker})
        gaps = [gap.record() for gap in recording.gaps]
        if not is_first and gaps and gaps[0]["after_s"] == 0.0:
            gaps = gaps[1:]  # the numbers that went by while the room was off the air
        ledger.session_gaps(gaps)
        ledger.state = "ended"
        await lander.save()
        lander.end_session(source, recording.end.value)
        if recording.parts:
            _log.info(
                "session %d of %s: %d parts, %.1f s recorded, %d gaps (%s)",
                ledger.sessions,
                redact_url(job.spec.url),
                len(recording.parts),
                recording.recorded_s,
                len(gaps),
                recording.end.value,
            )
        return recording

    def _recorder(
        self,
        job: JobRun,
        source: StreamSource,
        writer: PartWriter,
        *,
        options: LiveOptions,
        lander: PartLander,
        resume_after: int | None,
    ) -> Recorder:
        request = TransferRequest(
            url=source.url,
            output_dir=job.output_dir,
            headers=source.headers,
            proxy=job.resources.proxy,
        )
        fetcher = self._engine.fetcher(request)
        rules = LiveRules(
            offline_grace_s=options.offline_grace_s,
            max_duration_s=_left_s(options, lander.ledger),
        )
        if source.protocol == "flv":
            from hauler.live.flvrecord import FlvRecorder
            from hauler.pipeline.livegetter import FetcherStreamer

            return FlvRecorder(
                source.url,
                FetcherStreamer(fetcher),
                self._clock,
                writer,
                rules,
                split_s=options.split_s,
                on_part=lander.land,
            )
        return HlsFollower(
            source.url,
            FetcherGetter(fetcher),
            self._clock,
            writer,
            rules,
            on_part=lander.land,
            resume_after=resume_after,
            max_height=_max_height(options.format),
        )


def protocol_of(url: str) -> str | None:
    """``hls`` or ``flv`` when the URL names such a stream by its path, else None (a page)."""
    path = urlsplit(url).path.lower()
    if path.endswith((".m3u8", ".m3u")):
        return "hls"
    if path.endswith(".flv"):
        return "flv"
    return None


async def _stop_on(stop: asyncio.Event, recorder: Recorder) -> None:
    await stop.wait()
    recorder.stop()


async def _report_status(job: JobRun, recorder: Recorder, ledger: LiveLedger, clock: Clock) -> None:
    """Every ``STATUS_EVERY_S``: the bytes written since the last look to the progress sink
    (the worker's meter, the display), and the state to those that listen."""
    events = live_events_of(job.progress)
    reported = 0
    job.progress.started(job.spec.url, None, 0)
    while True:
        status = recorder.status()
        if status.bytes > reported:
            job.progress.advanced(status.bytes - reported)
            reported = status.bytes
        ledger.state = status.state.value
        events.live_state(status.state.value, status.part_index, ledger.recorded_s)
        await clock.sleep(STATUS_EVERY_S)


def _left_s(options: LiveOptions, ledger: LiveLedger) -> float | None:
    """What is left of ``max_duration_s`` after what earlier attempts recorded."""
    if options.max_duration_s is None:
        return None
    return max(0.001, options.max_duration_s - ledger.recorded_s)


def _max_height(format_text: str | None) -> int | None:
    """A height (``720``, ``720p``) from ``-f``; other selectors leave the best variant."""
    text = (format_text or "").strip().lower().removesuffix("p")
    return int(text) if text.isdigit() else None


def _base_name(job: JobRun, source: StreamSource) -> str:
    """The parts' base name: the job's output name, else the room's title, else the
    playlist's name (``room7/live.m3u8`` → ``room7-live``)."""
    if job.spec.output:
        return safe_name(Path(job.spec.output).stem or "live")
    if source.title:
        return safe_name(source.title)
    url = source.url if protocol_of(job.spec.url) is None else job.spec.url
    stem = Path(name_from_response(url, None)).stem or "live"
    parent = Path(urlsplit(url).path).parent.name
    if stem.lower() in _GENERIC_STEMS and parent:
        stem = f"{parent}-{stem}"
    return safe_name(stem)
