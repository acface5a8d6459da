"""One file's transfer: probe, plan, run the connections (lanes), supervise, verify, commit.

A ``Download`` lives for one attempt; the ``Engine`` creates one per attempt, handing it an
``attempt.AttemptContext`` (not itself), and restarts from zero when it raises
``RestartTransfer``. Lanes are connections: each fills a segment, then asks
the plan for more (an idle segment, half of the largest remaining range, or, in the endgame, a
slow lane's whole tail). A supervisor task flushes the control file on time and closes lanes
that stay below the lowest-speed limit. The control-file writes are ``checkpoint.Checkpoint``'s,
the final verify and rename ``commit.verify_and_commit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from hauler import nofollow
from hauler.errors import (
    ConnectionFailed,
    DiskFull,
    HaulerError,
    LocalError,
    OriginChanged,
    RangeIgnored,
    RestartTransfer,
    Stalled,
    TooLarge,
    Transient,
)
from hauler.models import OnExisting
from hauler.naming import MAX_COUNTER, name_from_response, numbered, safe_name, safe_path
from hauler.policy.progress import StallBudget
from hauler.policy.retry import Action
from hauler.redact import redact_url
from hauler.transfer import existing, integrity, marks
from hauler.transfer.attempt import AttemptContext
from hauler.transfer.body import Body, Fetcher, RangeAsk, Reply
from hauler.transfer.checkpoint import Checkpoint
from hauler.transfer.commit import verify_and_commit
from hauler.transfer.controlcheck import MAX_TEXT_CHARS
from hauler.transfer.controlfiles import CONTROL_SUFFIX
from hauler.transfer.partfile import ControlState, PartBusy, PartFile, Validators, local_error
from hauler.transfer.probe import probe
from hauler.transfer.request import (
    NullProgress,
    ProgressSink,
    TransferEvents,
    TransferRequest,
    TransferResult,
    events_of,
)
from hauler.transfer.segments import Segment, SegmentPlan, is_valid_cover, should_take_over
from hauler.transfer.throttle import TokenBucket, delay_all

_log = logging.getLogger(__name__)

# A stream of unknown length is one segment that ends where the body ends.
UNKNOWN_END = 1 << 62
# Progress is reported in batches of this many bytes (and at the end of each response).
REPORT_BYTES = 512 * 1024
# A lane younger than this is not judged slow (its speed is not known yet).
MIN_JUDGE_AGE_S = 0.5


@dataclass(eq=False)
class Lane:
    """One connection's state, visible to the supervisor and to other lanes (endgame)."""

    segment: Segment | None = None
    body: Body | None = None
    fetch_started: float = 0.0
    fetched: int = 0
    last_bps: float = 0.0
    mark: tuple[float, int] = (0.0, 0)
    held_until: float = 0.0  # when the last wait imposed by our own rate limit ends
    is_stalled: bool = False

    def speed_bps(self, now: float) -> float:
        """This lane's speed over its current fetch."""
        return self.fetched / max(1e-3, now - self.fetch_started)

    def cut(self) -> None:
        """Stop the current response now (its reader wakes up with an error)."""
        if self.body is not None:
            self.body.abort()


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
    validators: Validators = field(default_factory=lambda: Validators(None, None, None))
    reply: Reply | None = None
    lanes: list[Lane] = field(default_factory=list)
    buckets: tuple[TokenBucket, ...] = ()
    fetched: int = 0
    resumed: int = 0
    unreported: int = 0
    started_at: float = 0.0
    fetcher: Fetcher | None = None
    group: asyncio.TaskGroup | None = None
    lane_target: int = 1
    best_bps: float = 0.0
    tick: asyncio.TimerHandle | None = None
    continue_from: int = 0  # the bytes of an existing file taken as this download's (wget -c)
    events: TransferEvents = field(default_factory=NullProgress)  # from progress, at run()
    is_unverified_resume: bool = False
    stalls: StallBudget | None = None  # built at the first stall
    checkpoint: Checkpoint = field(init=False)

    def __post_init__(self) -> None:
        self.checkpoint = Checkpoint(self.attempt.clock, self.attempt.control_files)

    async def run(self) -> TransferResult:
        """Download, verify and commit; raises the hauler.errors taxonomy only."""
        self.started_at = self.attempt.clock.monotonic()
        self.events = events_of(self.progress)
        self.url = self.request.url
        self.buckets = self.attempt.buckets
        if self.request.filename is not None:
            skipped = await self._take_name(self._named_path(self.request.filename))
            if skipped is not None:
                return skipped
        try:
            return await self._run_opened()
        except RestartTransfer:
            # The partial belongs to a version that is gone: the next attempt starts at zero.
            self.plan = None
            if self.part is not None:
                self.part.reset(None)
            raise
        finally:
            self._close()

    async def _run_opened(self) -> TransferResult:
        control = self.part.load_control() if self.part else self._guessed_control()
        ask = self._continue_ask() or _resume_ask(control)
        fetcher = self.attempt.fetcher(self.request)
        retries = self.attempt.settings.segment_retries
        body, reply = await probe(
            fetcher,
            self.url,
            ask,
            self.attempt.policy,
            retries,
            events=self.events,
            clock=self.attempt.clock,
        )
        try:
            self.reply, self.url = reply, reply.final_url
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

    def _guessed_control(self) -> ControlState | None:
        """The control file of the name the URL alone gives, read without locking.

        Only the probe's range comes from it (a resumed file is asked for from its first
        missing byte, not from 0); the real control file is loaded once the response names the
        file, and a probe that starts where the plan has no segment is simply closed.
        """
        name = name_from_response(self.request.url, None)  # one safe path component
        directory = self.attempt.paths.resolved_dir(self.request.output_dir)
        if not self.attempt.control_files.may_exist(directory, name + CONTROL_SUFFIX):
            return None
        path = self.attempt.paths.for_component(self.request.output_dir, name)
        try:
            control = str(path.parent / (path.name + CONTROL_SUFFIX))
            text = nofollow.read_text(None, control, MAX_TEXT_CHARS + 1)
        except (OSError, UnicodeDecodeError):
            return None
        state = ControlState.from_json(text) if text is not None else None
        if state is not None and state.source not in (None, marks.url_key(self.request.url)):
            return None  # another URL's partial under this name: this download takes another
        return state

    def _named_path(self, filename: str) -> Path:
        """The final path of the name the job gives: ``safe_path``'s answer, without its two
        ``realpath`` calls when the name is one safe component (as ``get`` names existing files).
        """
        if "/" not in filename and filename == safe_name(filename):
            return self.attempt.paths.for_component(self.request.output_dir, filename)
        return safe_path(self.request.output_dir, filename)

    async def _take_name(self, path: Path) -> TransferResult | None:
        """Settle the final name by the request's ``on_existing`` policy and open its partial;
        a skipped result when the file there is this download's (or is to be left alone).

        A name is taken when a file not marked as this download's is there, or a partial of
        another URL (its mark or control file says so, or a download of this process holds it).
        """
        source = marks.url_key(self.request.url)
        for candidate in existing.candidates(path):
            verdict = existing.judge(candidate, source, self.request.on_existing)
            if verdict is existing.Verdict.SKIP:
                return await self._skipped(candidate)
            if verdict is not existing.Verdict.NEXT and self._open_part(
                candidate, source, is_continue=verdict is existing.Verdict.CONTINUE
            ):
                self.final_path = candidate
                return None
        raise LocalError(f"no free name for {path} (up to {numbered(path.name, MAX_COUNTER)})")

    def _open_part(self, final_path: Path, source: str, is_continue: bool = False) -> bool:
        """Open and lock ``final_path``'s partial for ``source``; False when it is another
        URL's (then it is left as it is)."""
        part = PartFile(final_path, source)
        in_use = self.attempt.parts_in_use
        try:
            part.open(adopt=is_continue)
        except PartBusy:
            holder = in_use.get(part.path) or marks.source_of(part.path)
            if holder is not None and holder != source:
                return False  # another URL's download holds it: this name is taken
            raise
        if self.request.on_existing is not OnExisting.OVERWRITE and not part.is_ours(
            part.load_control(), self.request.url
        ):
            part.close()
            return False
        self.part, in_use[part.path] = part, source
        if part.is_adopted:
            self.continue_from = part.size_on_disk()
        return True

    def _continue_ask(self) -> RangeAsk | None:
        """The probe's range for a file taken as this download's first bytes (wget -c)."""
        return RangeAsk(self.continue_from) if self.continue_from else None

    def _continued(self, reply: Reply, control: ControlState | None) -> ControlState | None:
        """The plan's starting point for a file taken as this download's first bytes: resume
        when the server sent the rest, else start over (and say so)."""
        start, self.continue_from = self.continue_from, 0
        if not start:
            return control
        size = reply.validators.size
        if reply.status == 206 and reply.start == start and size is not None and size >= start:
            segments = [Segment(0, size, start)]
            return ControlState(
                self.url, reply.validators, segments, marks.url_key(self.request.url)
            )
        _log.info(
            "cannot continue %s from its %d bytes (the server sent %s from byte %d): starting over",
            self.final_path,
            start,
            reply.status,
            reply.start,
        )
        return None

    def _close(self) -> None:
        part = self.part
        if part is None:
            return
        if self.plan is not None and not self.plan.is_complete and part.path.exists():
            with contextlib.suppress(LocalError):
                self._save_control()
        elif self.plan is None and part.is_new:
            part.discard()  # this attempt created it and wrote nothing: leave no litter
        part.close()
        self.attempt.parts_in_use.pop(part.path, None)

    async def _skipped(self, path: Path) -> TransferResult:
        """The result for ``path``, already there and not to be fetched (checked against the
        request's checksum when it has one)."""
        checksum = self.request.checksum
        digest = None
        if checksum is not None:
            digest = await integrity.file_digest(path, checksum.algorithm)
            if digest != checksum.hexdigest:
                raise integrity.mismatch_existing(path, checksum, digest)
        # lstat: a link left there by ``skip`` is reported as what it is, dangling or not.
        size = os.lstat(path).st_size
        return TransferResult(
            url=self.request.url,
            final_url=self.request.url,
            path=path,
            size=size,
            bytes_fetched=0,
            resumed_bytes=0,
            elapsed_s=self.attempt.clock.monotonic() - self.started_at,
            skipped=True,
            checksum=digest,
        )

    def _plan(self, reply: Reply, control: ControlState | None) -> None:
        """Resume from ``control`` when it pins this version, else start from zero."""
        size = reply.validators.size
        limit = self.attempt.settings.max_size_bytes
        if size is not None and limit is not None and size > limit:
            raise TooLarge(f"{redact_url(self.url)} is {size} bytes, over the limit of {limit}")
        self.validators = reply.validators
        assert self.part is not None
        if _can_resume(control, reply, self.is_ranged) and self._has_claimed_bytes(control):
            assert control is not None and size is not None
            self.plan = SegmentPlan(size, control.segments, self.attempt.settings.min_split_bytes)
            self.resumed = self.plan.done_bytes
            self._preallocate(size)
            if not control.validators.is_pinned:
                self._note_unverified_resume()
        else:
            self.part.reset(size)
            self.plan = self._fresh_plan(reply)
        self.progress.started(self.final_path.name if self.final_path else "", size, self.resumed)

    def _note_unverified_resume(self) -> None:
        """Resuming on the size alone: say so once, and in the result (aria2c's rule)."""
        self.is_unverified_resume = True
        _log.warning(
            "resuming %s at %d bytes without verifying it: the server sends no ETag or "
            "Last-Modified, only the size matches",
            redact_url(self.url),
            self.resumed,
        )

    def _has_claimed_bytes(self, control: ControlState | None) -> bool:
        """The ``.part`` file is long enough to hold every byte the control file claims."""
        assert self.part is not None and control is not None
        return max(s.pos for s in control.segments) <= self.part.size_on_disk()

    def _preallocate(self, size: int) -> None:
        assert self.part is not None
        try:
            self.part.preallocate(size)
        except OSError as exc:
            raise local_error(exc, self.part.path) from exc

    def _fresh_plan(self, reply: Reply) -> SegmentPlan:
        settings = self.attempt.settings
        size = reply.validators.size
        if size is None:
            self.is_ranged = False
            return SegmentPlan(UNKNOWN_END, [Segment(0, UNKNOWN_END, 0)], UNKNOWN_END)
        if not (self.is_ranged and reply.accepts_ranges):
            self.is_ranged = False
            return SegmentPlan(size, [Segment(0, size, 0)], max(1, size))
        connections = self.request.connections or settings.connections
        return SegmentPlan.initial(size, connections, settings.min_split_bytes)

    def _lane_count(self) -> int:
        assert self.plan is not None
        if not self.is_ranged:
            return 1
        connections = self.request.connections or self.attempt.settings.connections
        return max(1, min(connections, self.plan.size // self.attempt.settings.min_split_bytes))

    async def _transfer(self, fetcher: Fetcher, body: Body, reply: Reply) -> None:
        assert self.plan is not None
        self.fetcher, self.checkpoint.last_flush = fetcher, self.attempt.clock.monotonic()
        self.lane_target = self._lane_count()
        first = self.plan.segment_at(reply.start)
        if first is None:
            body.close()
        else:
            first.is_active = True
        self._schedule_tick()
        try:
            if self.lane_target == 1 and first is not None:
                # One lane and no room for more: no task group needed (the small-file path).
                await self._lane(self._new_lane(), first, body, reply)
            else:
                await self._run_lanes(first, body, reply)
        except BaseException:
            await self._settle_flush(is_quiet=True)  # the error in flight wins
            raise
        await self._settle_flush()
        self._report()

    async def _run_lanes(self, first: Segment | None, body: Body, reply: Reply) -> None:
        """Run lanes in a task group: the first on the probe's body, others on their own."""
        try:
            async with asyncio.TaskGroup() as group:
                self.group = group
                if first is not None:
                    self._spawn(first, body, reply)
                while len(self.lanes) < self.lane_target and self._spawn(self._claim(None)):
                    pass
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            self.group = None

    def _new_lane(self) -> Lane:
        lane = Lane()
        self.lanes.append(lane)
        self.events.connections(len(self.lanes))
        return lane

    def _drop_lane(self, lane: Lane) -> None:
        self.lanes.remove(lane)
        self.events.connections(len(self.lanes))

    def _spawn(
        self,
        segment: Segment | None,
        body: Body | None = None,
        reply: Reply | None = None,
    ) -> bool:
        """Start a lane on ``segment`` (already marked active); False if there is none."""
        if segment is None or self.group is None:
            return False
        lane = self._new_lane()
        work = self._lane(lane, segment, body, reply)
        try:
            self.group.create_task(work)
        except RuntimeError:  # the group is finishing or failing: nothing to add
            work.close()  # Python 3.11 leaves it unawaited ("coroutine never awaited")
            self._drop_lane(lane)
            segment.is_active = False
            return False
        return True

    async def _lane(
        self,
        lane: Lane,
        segment: Segment | None,
        body: Body | None,
        reply: Reply | None,
    ) -> None:
        try:
            while segment is not None:
                await self._fill(lane, segment, body, reply)
                body = reply = None
                self.best_bps = max(self.best_bps, lane.last_bps)
                segment = self._claim(lane)
        finally:
            self._drop_lane(lane)

    def _claim(self, lane: Lane | None) -> Segment | None:
        """The next segment for a free lane: idle, stolen half, or an endgame takeover."""
        assert self.plan is not None
        segment = self.plan.next_idle()
        if segment is None and self.is_ranged:
            segment = self.plan.steal() or self._endgame(
                lane.last_bps if lane else self.best_bps, lane
            )
        if segment is not None:
            segment.is_active = True
        return segment

    def _endgame(self, thief_bps: float, thief: Lane | None) -> Segment | None:
        """Take over the slowest lane's tail when a lane at ``thief_bps`` would finish it much
        sooner."""
        assert self.plan is not None
        now = self.attempt.clock.monotonic()
        busy = [
            lane
            for lane in self.lanes
            if lane is not thief
            and lane.segment is not None
            and lane.segment.remaining > 0
            and now - lane.fetch_started >= MIN_JUDGE_AGE_S
        ]
        victim = min(busy, key=lambda lane: lane.speed_bps(now), default=None)
        if victim is None or victim.segment is None:
            return None
        if not should_take_over(victim.segment.remaining, victim.speed_bps(now), thief_bps):
            return None
        tail = self.plan.take_over(victim.segment)
        victim.cut()
        return tail

    async def _fill(
        self,
        lane: Lane,
        segment: Segment,
        body: Body | None,
        reply: Reply | None,
    ) -> None:
        """Fetch ``segment`` to its end, retrying transient failures with backoff."""
        failures = 0
        lane.segment = segment
        began, start_pos = self.attempt.clock.monotonic(), segment.pos
        try:
            while segment.remaining > 0:
                before = segment.pos
                try:
                    if body is None or reply is None:
                        assert self.fetcher is not None
                        body, reply = await self.fetcher.open(self.url, self._ask(segment))
                    await self._pump(lane, segment, body, reply)
                except Transient as exc:
                    if segment.remaining <= 0:
                        break
                    # A failure after progress starts the count again: resets every few MiB
                    # must not fail a file that keeps moving.
                    failures = 1 if segment.pos > before else failures + 1
                    await self._backoff(lane, exc, failures)
                finally:
                    lane.body = None
                    if body is not None:
                        body.close()
                    body = reply = None
        finally:
            segment.is_active = False
            lane.segment = None
            elapsed = self.attempt.clock.monotonic() - began
            lane.last_bps = (segment.pos - start_pos) / max(1e-3, elapsed)

    async def _backoff(self, lane: Lane, exc: Transient, failures: int) -> None:
        """Sleep before the next attempt, or raise when the segment's retries are spent."""
        error = self._stall_error() if lane.is_stalled else exc
        if isinstance(error, Stalled) and self._stalls_spent():
            raise self._gave_up_error() from exc
        retries = self.attempt.settings.segment_retries
        decision = self.attempt.policy.decide(error, failures, retries + 1)
        if decision.action is Action.FAIL:
            if error is exc:
                raise exc
            raise error from exc
        _log.info("retry %d in %.2f s: %s", failures, decision.delay_s, error.message)
        self.events.retrying(error.message, failures + 1, retries + 1, decision.delay_s)
        await self.attempt.clock.sleep(decision.delay_s)

    def _stalls_spent(self) -> bool:
        """Count a stall reconnect; True when the file has trickled for too many of them."""
        if self.stalls is None:
            settings = self.attempt.settings
            self.stalls = StallBudget(
                settings.max_stall_reconnects, settings.lowest_speed_bps, self.started_at
            )
        return self.stalls.is_spent(self.attempt.clock.monotonic(), self.fetched)

    def _gave_up_error(self) -> Stalled:
        settings = self.attempt.settings
        return Stalled(
            f"{redact_url(self.url)}: kept below {settings.lowest_speed_bps} B/s for "
            f"{settings.max_stall_reconnects} reconnects; giving up"
        )

    def _stall_error(self) -> Stalled:
        settings = self.attempt.settings
        return Stalled(
            f"{redact_url(self.url)}: below {settings.lowest_speed_bps} B/s "
            f"for {settings.stall_window_s:g} s"
        )

    def _ask(self, segment: Segment) -> RangeAsk | None:
        if not self.is_ranged:
            return None
        return RangeAsk(segment.pos, segment.end, self.validators.if_range)

    def _check_reply(self, segment: Segment, reply: Reply) -> None:
        """The reply must be the same version and start where the segment continues."""
        if not _same_version(self.validators, reply.validators, self.is_ranged):
            raise OriginChanged(f"{redact_url(self.url)} changed during the download")
        if reply.start == segment.pos:
            return
        if not self.is_ranged and reply.start == 0:
            # No ranges: every retry starts the only segment over from byte 0.
            segment.pos = segment.start
            return
        raise RangeIgnored(f"{redact_url(self.url)} ignored the Range request at {segment.pos}")

    async def _pump(self, lane: Lane, segment: Segment, body: Body, reply: Reply) -> None:
        """Stream ``body`` into ``segment`` until the segment or the body ends."""
        self._check_reply(segment, reply)
        lane.body, lane.is_stalled = body, False
        lane.fetch_started, lane.fetched = self.attempt.clock.monotonic(), 0
        lane.mark = (lane.fetch_started, segment.pos)
        read, buckets = body.read, self.buckets
        while True:
            data = await read()
            if not data:
                break
            room = segment.end - segment.pos
            if len(data) > room:  # the segment was shortened (stolen) meanwhile
                data = data[:room]
            self._write(segment, lane, data)
            if buckets and (delay_s := delay_all(buckets, len(data))) > 0:
                lane.held_until = self.attempt.clock.monotonic() + delay_s
                await self.attempt.clock.sleep(delay_s)
            if segment.pos >= segment.end:
                return
        self._body_ended(segment, reply)

    def _write(self, segment: Segment, lane: Lane, data: bytes) -> None:
        assert self.part is not None
        if not data:
            return
        nbytes = len(data)
        limit = self.attempt.settings.max_size_bytes
        if limit is not None and segment.pos + nbytes > limit:
            # Only a stream of unknown length gets here: a known size was judged in _plan.
            self._drop_unresumable()
            raise TooLarge(f"{redact_url(self.url)} sent more than the limit of {limit} bytes")
        try:
            self.part.write(segment.pos, data)
        except DiskFull:
            if self.plan is not None and self.plan.size == UNKNOWN_END:
                self._drop_unresumable()  # no control file can ever resume it
            raise
        segment.pos += nbytes
        lane.fetched += nbytes
        self.fetched += nbytes
        checkpoint = self.checkpoint
        checkpoint.unflushed += nbytes
        self.unreported += nbytes
        if self.unreported >= REPORT_BYTES:
            self._report()
        if checkpoint.unflushed >= self.attempt.settings.control_flush_bytes:
            self._flush_in_background()

    def _drop_unresumable(self) -> None:
        """Delete the partial now: its bytes can never be resumed (a stream of unknown length)
        or are not wanted (over the size limit)."""
        assert self.part is not None
        self.part.discard()

    def _body_ended(self, segment: Segment, reply: Reply) -> None:
        """The body ended cleanly: fine for a stream of unknown length, short otherwise."""
        if reply.validators.size is None and reply.length is None and not self.is_ranged:
            segment.end = segment.pos
            assert self.plan is not None
            self.plan.size = segment.pos
            return
        if segment.remaining > 0:
            raise ConnectionFailed(
                f"{redact_url(self.url)}: the body ended at byte {segment.pos}, expected more"
            )

    def _report(self) -> None:
        if self.unreported:
            self.progress.advanced(self.unreported)
            self.unreported = 0

    def _control_state(self) -> ControlState | None:
        """What the control file is to say now (None for a stream of unknown length)."""
        if self.part is None or self.plan is None or self.plan.size == UNKNOWN_END:
            return None
        self.plan.compact()
        return ControlState(self.url, self.validators, self.plan.segments, self.part.source)

    def _save_control(self) -> None:
        """Write the control file now, on the event loop (at exit and cancel)."""
        state = self._control_state()
        if state is not None and self.part is not None:
            self.checkpoint.save(self.part, state)

    def _flush_in_background(self, is_lane: bool = True) -> None:
        """Write the control file from a thread (``Checkpoint``: one write at a time, a failed
        one raised in the lane that wrote)."""
        if not self.checkpoint.may_flush(is_lane):
            return  # the error surfaces in a lane or when the transfer settles
        state = self._control_state()
        if state is not None and self.part is not None:
            self.checkpoint.flush_in_background(self.part, state)

    async def _settle_flush(self, is_quiet: bool = False) -> None:
        """Stop the timer and wait for a background flush, so that nothing lands after commit
        or discard; raise its error unless ``is_quiet``."""
        if self.tick is not None:
            self.tick.cancel()
        await self.checkpoint.settle(is_quiet)

    def _schedule_tick(self) -> None:
        settings = self.attempt.settings
        tick_s = max(0.05, min(settings.control_flush_s, settings.stall_window_s / 4))
        self.tick = asyncio.get_running_loop().call_later(tick_s, self._on_tick)

    def _on_tick(self) -> None:
        """Supervise (a timer, not a task: small files end before it ever fires): flush the
        control file on time, cut lanes below the lowest-speed limit, help stragglers."""
        settings = self.attempt.settings
        now = self.attempt.clock.monotonic()
        checkpoint = self.checkpoint
        if checkpoint.unflushed and now - checkpoint.last_flush >= settings.control_flush_s:
            self._flush_in_background(is_lane=False)
        if settings.lowest_speed_bps > 0:
            self._cut_slow_lanes(now)
        if len(self.lanes) < self.lane_target:
            # Lanes retire when nothing is left to split; a slow straggler may need help.
            self._spawn(self._claim(None))
        self._schedule_tick()

    def _cut_slow_lanes(self, now: float) -> None:
        settings = self.attempt.settings
        for lane in self.lanes:
            if lane.segment is None or lane.body is None:
                continue
            since, pos = lane.mark
            if now - since < settings.stall_window_s:
                continue
            # Held back by our own rate limit in this window: the origin is not too slow.
            is_held = lane.held_until >= since
            if not is_held and lane.segment.pos - pos < settings.lowest_speed_bps * (now - since):
                lane.is_stalled = True
                lane.cut()
            lane.mark = (now, lane.segment.pos)

    async def _finish(self) -> TransferResult:
        """Check that every byte came, then verify and rename into place (``commit``)."""
        assert self.part is not None and self.plan is not None and self.final_path is not None
        size = self.plan.size
        if not self.plan.is_complete or self.plan.done_bytes != size:
            raise ConnectionFailed(
                f"{redact_url(self.url)}: incomplete ({self.plan.done_bytes} of {size})"
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
            bytes_fetched=self.fetched,
            resumed_bytes=self.resumed,
            elapsed_s=self.attempt.clock.monotonic() - self.started_at,
            checksum=digest,
            etag=self.validators.etag,
            last_modified=self.validators.last_modified,
            content_type=self.reply.content_type,
            is_unverified_resume=self.is_unverified_resume,
        )


def _resume_ask(control: ControlState | None) -> RangeAsk:
    """The probe's range: from the first missing byte of a resumable partial, else from 0."""
    if control is None or control.validators.size is None:
        return RangeAsk()
    pending = [s for s in control.segments if s.remaining > 0]
    start = min((s.pos for s in pending), default=max(0, control.validators.size - 1))
    return RangeAsk(start, None, control.validators.if_range)


def _can_resume(control: ControlState | None, reply: Reply, is_ranged: bool) -> bool:
    size = reply.validators.size
    return (
        control is not None
        and is_ranged
        and reply.status == 206
        and size is not None
        and control.validators.same_version(reply.validators)
        and is_valid_cover(control.segments, size)
    )


def _same_version(ours: Validators, theirs: Validators, is_ranged: bool) -> bool:
    if ours.size is None:
        return True
    if not is_ranged and theirs.size is None:
        return ours.etag == theirs.etag
    return ours.same_version(theirs)


def _first_error(group_error: BaseExceptionGroup[BaseException]) -> BaseException:
    """The most telling error of a group: a HaulerError first, else the first one."""
    flat: list[BaseException] = []
    stack: list[BaseException] = [group_error]
    while stack:
        error = stack.pop()
        if isinstance(error, BaseExceptionGroup):
            stack.extend(reversed(error.exceptions))
        else:
            flat.append(error)
    for error in flat:
        if isinstance(error, HaulerError):
            return error
    return flat[0]
