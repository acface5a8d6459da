"""One file's transfer attempt: settle the name, probe, plan, run the lanes, verify, commit.

A ``Download`` lives for one attempt; the ``Engine`` creates one per attempt, handing it an
``attempt.AttemptContext`` (not itself), and restarts from zero when it raises
``RestartTransfer``. It composes the seams: ``destination`` settles the final name and opens its
partial, ``resume`` says what of that partial is resumed, ``lanes.Lanes`` runs the connections,
``partwriter.PartWriter`` lands their bytes and snapshots the plan (``checkpoint``), and
``commit.verify_and_commit`` verifies and renames. A supervisor ticking on the attempt's clock
flushes the control file on time and lets the lanes cut connections that stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from hauler.errors import ConnectionFailed, LocalError, NotAFile, RestartTransfer, TooLarge
from hauler.models import OnExisting
from hauler.naming import name_from_response, safe_name, safe_path
from hauler.progress import NullProgress, ProgressSink, TransferEvents, events_of
from hauler.redact import redact_url
from hauler.transfer import destination, marks, resume
from hauler.transfer.attempt import AttemptContext
from hauler.transfer.body import Body, Fetcher, Reply
from hauler.transfer.commit import verify_and_commit
from hauler.transfer.lanes import Lanes
from hauler.transfer.partfile import ControlState, PartFile, Validators
from hauler.transfer.partwriter import PartWriter
from hauler.transfer.probe import probe
from hauler.transfer.request import TransferRequest, TransferResult
from hauler.transfer.segments import SegmentPlan

_log = logging.getLogger(__name__)


@dataclass(eq=False)
class Download:
    """One attempt at one ``TransferRequest``."""

    attempt: AttemptContext
    request: TransferRequest
    progress: ProgressSink
    is_ranged: bool = True
    url: str = ""
    final_path: Path | None = None
    part: PartFile | None = None
    plan: SegmentPlan | None = None
    writer: PartWriter | None = None  # there whenever ``plan`` is
    validators: Validators = field(default_factory=lambda: Validators(None, None, None))
    reply: Reply | None = None
    lanes: Lanes | None = None
    supervisor: asyncio.Task[None] | None = None
    resumed: int = 0
    started_at: float = 0.0
    continue_from: int = 0  # the bytes of an existing file taken as this download's (wget -c)
    events: TransferEvents = field(default_factory=NullProgress)  # from progress, at run()
    is_unverified_resume: bool = False

    async def run(self) -> TransferResult:
        """Download, verify and commit; raises the hauler.errors taxonomy only."""
        self.started_at = self.attempt.clock.monotonic()
        self.events = events_of(self.progress)
        self.url = self.request.url
        if self.request.filename is not None:
            skipped = await self._take_name(self._named_path(self.request.filename))
            if skipped is not None:
                return skipped
        try:
            return await self._run_opened()
        except RestartTransfer:
            # The partial belongs to a version that is gone: the next attempt starts at zero.
            self.plan = self.writer = None
            if self.part is not None:
                self.part.reset(None)
            raise
        finally:
            self._close()

    async def _run_opened(self) -> TransferResult:
        part = self.part
        control = (
            part.load_control() if part else resume.guessed_control(self.attempt, self.request)
        )
        fetcher = self.attempt.fetcher(self.request)
        body, reply = await probe(
            fetcher,
            self.url,
            resume.probe_ask(control, self.continue_from),
            self.attempt.policy,
            self.attempt.settings.segment_retries,
            events=self.events,
            clock=self.attempt.clock,
        )
        try:
            self.reply, self.url = reply, reply.final_url
            if self.request.pages_are_media and self.final_path is None:
                _refuse_pages(reply)
            if self.final_path is None:
                name = name_from_response(reply.final_url, reply.content_disposition)
                path = self.attempt.paths.for_component(self.request.output_dir, name)
                skipped = await self._take_name(path)
                if skipped is not None:
                    return skipped
                control = self.part.load_control() if self.part else None
            self._plan(reply, self._continued(reply, control))
            await self._transfer(fetcher, body, reply)
        finally:
            body.close()
        return await self._finish()

    def _named_path(self, filename: str) -> Path:
        """The final path of the name the job gives: ``safe_path``'s answer, without its two
        ``realpath`` calls when the name is one safe component (as ``get`` names existing files).
        """
        if "/" not in filename and filename == safe_name(filename):
            return self.attempt.paths.for_component(self.request.output_dir, filename)
        return safe_path(self.request.output_dir, filename)

    async def _take_name(self, path: Path) -> TransferResult | None:
        """Settle the final name and open its partial (``destination``); a skipped result when
        the file there is this download's (or is to be left alone)."""
        taken = destination.take_name(self.attempt, self.request, path)
        if taken.part is None:
            clock = self.attempt.clock
            return await destination.skipped(self.request, taken.path, clock, self.started_at)
        self.final_path, self.part = taken.path, taken.part
        if taken.part.is_adopted:
            self.continue_from = taken.part.size_on_disk()
        return None

    def _continued(self, reply: Reply, control: ControlState | None) -> ControlState | None:
        """The plan's starting point for a file taken as this download's first bytes: resume
        when the server sent the rest, else start over (and say so)."""
        start, self.continue_from = self.continue_from, 0
        if not start:
            return control
        state = resume.continued(start, reply, self.url, marks.url_key(self.request.url))
        if state is None:
            _log.info(
                "cannot continue %s from its %d bytes (the server sent %s from byte %d): "
                "starting over",
                self.final_path,
                start,
                reply.status,
                reply.start,
            )
        return state

    def _close(self) -> None:
        part = self.part
        if part is None:
            return
        writer = self.writer
        if writer is not None and not writer.plan.is_complete and part.path.exists():
            with contextlib.suppress(LocalError):
                writer.save_control()
        elif writer is None and part.is_new:
            part.discard()  # this attempt created it and wrote nothing: leave no litter
        part.close()
        self.attempt.parts_in_use.pop(part.path, None)

    def _plan(self, reply: Reply, control: ControlState | None) -> None:
        """Resume from ``control`` when it pins this version, else start at zero (``resume``)."""
        size = reply.validators.size
        settings = self.attempt.settings
        limit = settings.max_size_bytes
        if size is not None and limit is not None and size > limit:
            raise TooLarge(f"{redact_url(self.url)} is {size} bytes, over the limit of {limit}")
        self.validators = reply.validators
        assert self.part is not None
        begin = resume.start(
            control,
            reply,
            self.is_ranged,
            self.part,
            connections=self._connections,
            min_split_bytes=settings.min_split_bytes,
        )
        if begin.resumed is None:
            self.part.reset(size)
        self.is_ranged, self.plan = begin.is_ranged, begin.plan
        writer = self.writer = PartWriter(
            self.attempt, self.part, begin.plan, self.url, self.validators, self.progress
        )
        if begin.resumed is not None:
            self.resumed = begin.plan.done_bytes
            writer.preallocate(begin.plan.size)
            if not begin.resumed.validators.is_pinned:
                self.is_unverified_resume = True
                resume.note_unverified(self.url, self.resumed)
        self.progress.started(self.final_path.name if self.final_path else "", size, self.resumed)

    @property
    def _connections(self) -> int:
        return self.request.connections or self.attempt.settings.connections

    async def _transfer(self, fetcher: Fetcher, body: Body, reply: Reply) -> None:
        """Run the lanes over the plan, the first on the probe's body, under the supervisor."""
        plan, writer = self.plan, self.writer
        assert plan is not None and writer is not None
        writer.begin()
        lanes = self.lanes = Lanes(
            self.attempt,
            fetcher,
            writer,
            self.is_ranged,
            self._connections,
            self.events,
            self.started_at,
        )
        first = plan.segment_at(reply.start)
        if first is None:
            body.close()
        else:
            first.is_active = True
        stop = asyncio.Event()
        self.supervisor = asyncio.create_task(self._supervise(lanes, writer, stop))
        try:
            await lanes.run(first, body, reply)
        except BaseException:
            stop.set()
            await writer.settle(is_quiet=True)  # the error in flight wins
            raise
        stop.set()  # no tick after this: nothing may land after commit or discard
        await writer.settle()
        writer.report()

    async def _supervise(self, lanes: Lanes, writer: PartWriter, stop: asyncio.Event) -> None:
        """Tick on the attempt's clock until ``stop``: flush the control file on time, cut
        lanes below the lowest-speed limit, help stragglers (``Lanes.supervise``)."""
        settings = self.attempt.settings
        clock = self.attempt.clock
        tick_s = max(0.05, min(settings.control_flush_s, settings.stall_window_s / 4))
        # ``stop`` checked again: a tick already due when it was set must not run.
        while not await clock.wait_for(stop, tick_s) and not stop.is_set():
            now = clock.monotonic()
            writer.flush_if_due(now)
            lanes.supervise(now)

    async def _finish(self) -> TransferResult:
        """Check that every byte came, then verify and rename into place (``commit``)."""
        plan, lanes = self.plan, self.lanes
        assert self.part is not None and plan is not None and lanes is not None
        size = plan.size
        if not plan.is_complete or plan.done_bytes != size:
            raise ConnectionFailed(
                f"{redact_url(self.url)}: incomplete ({plan.done_bytes} of {size})"
            )
        self.final_path, digest = await verify_and_commit(
            self.part,
            size,
            self.request.checksum,
            durable=bool(self.attempt.settings.fsync_files),
            may_replace=self.request.on_existing is OnExisting.OVERWRITE,
        )
        assert self.reply is not None
        return TransferResult(
            url=self.request.url,
            final_url=self.url,
            path=self.final_path,
            size=size,
            bytes_fetched=lanes.fetched,
            resumed_bytes=self.resumed,
            elapsed_s=self.attempt.clock.monotonic() - self.started_at,
            checksum=digest,
            etag=self.validators.etag,
            last_modified=self.validators.last_modified,
            content_type=self.reply.content_type,
            is_unverified_resume=self.is_unverified_resume,
        )


# What a media page or a streaming manifest answers (a file of these types is rare and
# ``--kind file`` still saves it).
PAGE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "application/dash+xml",
    }
)


def _refuse_pages(reply: Reply) -> None:
    """``NotAFile`` when ``reply`` is a web page or a manifest."""
    content_type = (reply.content_type or "").split(";", 1)[0].strip().lower()
    if content_type in PAGE_TYPES:
        raise NotAFile(content_type)
