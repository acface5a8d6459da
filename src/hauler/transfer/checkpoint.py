"""One attempt's control-file writes (``Checkpoint``): the bytes written since the last one,
when it was, and the one background write in flight.

A snapshot is written from a thread as bytes land (a rename over a file can wait on the disk),
and on the event loop at exit and cancel. Any snapshot is safe to land late: it only claims
bytes already written. The ``Download`` says what to write (its plan as a ``ControlState``).
"""

from __future__ import annotations

import asyncio

from hauler.clock import Clock
from hauler.transfer.controlfiles import ControlFiles
from hauler.transfer.partfile import ControlState, PartFile


class Checkpoint:
    """The control-file writes of one ``Download`` attempt."""

    __slots__ = ("_clock", "_control_files", "_flushing", "last_flush", "unflushed")

    def __init__(self, clock: Clock, control_files: ControlFiles) -> None:
        self._clock = clock
        self._control_files = control_files
        self._flushing: asyncio.Future[None] | None = None
        self.unflushed = 0  # bytes written since the last snapshot
        self.last_flush = 0.0  # the clock's monotonic time of the last snapshot

    def may_flush(self, is_lane: bool) -> bool:
        """One background write at a time: False while one is in flight. A failed one (disk
        full) raises here when ``is_lane`` (in the lane that wrote); the timer leaves it for a
        lane or for ``settle``."""
        flushing = self._flushing
        if flushing is None:
            return True
        if not flushing.done() or (flushing.exception() is not None and not is_lane):
            return False
        flushing.result()
        return True

    def save(self, part: PartFile, state: ControlState) -> None:
        """Write ``state`` now, on the event loop (at exit and cancel)."""
        part.write_control_text(self._text(part, state), ".tmp")

    def flush_in_background(self, part: PartFile, state: ControlState) -> None:
        """Write ``state`` from a thread (after ``may_flush`` said yes)."""
        text = self._text(part, state)
        write = part.write_control_text
        self._flushing = asyncio.ensure_future(asyncio.to_thread(write, text, ".tmp-bg"))

    async def settle(self, is_quiet: bool = False) -> None:
        """Wait for a background write, so that nothing lands after commit or discard; raise
        its error unless ``is_quiet``."""
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            await asyncio.wait([flushing])
            if flushing.exception() is not None and not is_quiet:
                flushing.result()

    def _text(self, part: PartFile, state: ControlState) -> str:
        """``state`` as the control file's text; the counters start again from now."""
        self._control_files.note_written(part.control_path)
        self.unflushed = 0
        self.last_flush = self._clock.monotonic()
        return state.to_json()
