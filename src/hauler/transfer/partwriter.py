"""Where the lanes' bytes land (``PartWriter``): the partial at their offsets, progress in
batches, and control-file snapshots of the plan as the bytes add up and as time passes.

The snapshot's writes are ``checkpoint.Checkpoint``'s; this says what it holds (the plan as a
``ControlState``) and when to write it. A stream of unknown length gets none: nothing could
resume it, so a disk-full error there deletes its partial at once, as does going over the size
limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hauler.config import TransferSettings
from hauler.errors import DiskFull, TooLarge
from hauler.progress import ProgressSink
from hauler.redact import redact_url
from hauler.transfer.attempt import AttemptContext
from hauler.transfer.checkpoint import Checkpoint
from hauler.transfer.partfile import ControlState, PartFile, Validators, local_error
from hauler.transfer.resume import UNKNOWN_END
from hauler.transfer.segments import Segment, SegmentPlan

# Progress is reported in batches of this many bytes (and at the end of each transfer).
REPORT_BYTES = 512 * 1024


@dataclass(eq=False)
class PartWriter:
    """The writes of one attempt into ``part`` for ``plan`` (of ``url`` at ``validators``)."""

    attempt: AttemptContext
    part: PartFile
    plan: SegmentPlan
    url: str
    validators: Validators
    progress: ProgressSink
    unreported: int = 0
    settings: TransferSettings = field(init=False)
    checkpoint: Checkpoint = field(init=False)

    def __post_init__(self) -> None:
        self.settings = self.attempt.settings
        self.checkpoint = Checkpoint(self.attempt.clock, self.attempt.control_files)

    def preallocate(self, size: int) -> None:
        """Reserve the whole file on disk for a resumed plan (a fresh one: ``PartFile.reset``)."""
        try:
            self.part.preallocate(size)
        except OSError as exc:
            raise local_error(exc, self.part.path) from exc

    def begin(self) -> None:
        """The transfer starts now: the first timed flush counts from here."""
        self.checkpoint.last_flush = self.attempt.clock.monotonic()

    def write(self, segment: Segment, data: bytes) -> None:
        """Write ``data`` at ``segment.pos`` and advance it; flush and report as due."""
        if not data:
            return
        nbytes = len(data)
        limit = self.settings.max_size_bytes
        if limit is not None and segment.pos + nbytes > limit:
            # Only a stream of unknown length gets here: a known size was judged at the plan.
            self.part.discard()  # bytes not wanted
            raise TooLarge(f"{redact_url(self.url)} sent more than the limit of {limit} bytes")
        try:
            self.part.write(segment.pos, data)
        except DiskFull:
            if self.plan.size == UNKNOWN_END:
                self.part.discard()  # no control file can ever resume it
            raise
        segment.pos += nbytes
        checkpoint = self.checkpoint
        checkpoint.unflushed += nbytes
        self.unreported += nbytes
        if self.unreported >= REPORT_BYTES:
            self.report()
        if checkpoint.unflushed >= self.settings.control_flush_bytes:
            self.flush_in_background()

    def report(self) -> None:
        """Tell the progress sink about the bytes written since the last report."""
        if self.unreported:
            self.progress.advanced(self.unreported)
            self.unreported = 0

    def flush_if_due(self, now: float) -> None:
        """A tick: snapshot the plan when bytes have waited ``control_flush_s`` for one."""
        checkpoint = self.checkpoint
        if checkpoint.unflushed and now - checkpoint.last_flush >= self.settings.control_flush_s:
            self.flush_in_background(is_lane=False)

    async def settle(self, is_quiet: bool = False) -> None:
        """Wait for a background flush, so that nothing lands after commit or discard; raise
        its error unless ``is_quiet``."""
        await self.checkpoint.settle(is_quiet)

    def save_control(self) -> None:
        """Write the control file now, on the event loop (at exit and cancel)."""
        state = self._control_state()
        if state is not None:
            self.checkpoint.save(self.part, state)

    def flush_in_background(self, is_lane: bool = True) -> None:
        """Write the control file from a thread (``Checkpoint``: one write at a time, a failed
        one raised in the lane that wrote)."""
        if not self.checkpoint.may_flush(is_lane):
            return  # the error surfaces in a lane or when the transfer settles
        state = self._control_state()
        if state is not None:
            self.checkpoint.flush_in_background(self.part, state)

    def _control_state(self) -> ControlState | None:
        """What the control file is to say now (None for a stream of unknown length)."""
        if self.plan.size == UNKNOWN_END:
            return None
        self.plan.compact()
        return ControlState(self.url, self.validators, self.plan.segments, self.part.source)
