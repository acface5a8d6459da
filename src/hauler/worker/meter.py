"""Bytes transferred by this worker: a progress sink per job, one total for the heartbeat."""

from __future__ import annotations


class ByteMeter:
    """Counts bytes written by every lane and turns them into a speed between two samples."""

    def __init__(self, now_mono: float) -> None:
        self.bytes_total = 0
        self._last_total = 0
        self._last_mono = now_mono
        self.bytes_per_s = 0.0

    def sink(self) -> LaneProgress:
        """A ``ProgressSink`` for one job that adds into this meter."""
        return LaneProgress(self)

    def sample(self, now_mono: float) -> float:
        """The speed since the previous sample, in bytes per second."""
        elapsed = now_mono - self._last_mono
        if elapsed > 0:
            self.bytes_per_s = (self.bytes_total - self._last_total) / elapsed
            self._last_total = self.bytes_total
            self._last_mono = now_mono
        return self.bytes_per_s


class LaneProgress:
    """The ``ProgressSink`` handed to ``pipeline.run`` for one job."""

    def __init__(self, meter: ByteMeter) -> None:
        self._meter = meter
        self.bytes_done = 0
        # A live job's state (``progress.LiveEvents``): waiting, recording, reconnecting…
        self.live_state_now: str | None = None

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        """Bytes already on disk are not counted: only what this worker transferred."""
        return None

    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more bytes were written."""
        self.bytes_done += nbytes
        self._meter.bytes_total += nbytes

    def live_state(self, state: str, part_index: int | None, recorded_s: float) -> None:
        """A recording's state, for the heartbeat's counts of recording and watching jobs."""
        self.live_state_now = state

    @property
    def is_watching(self) -> bool:
        """A live job waiting for its room to go live."""
        return self.live_state_now == "waiting"

    @property
    def is_recording(self) -> bool:
        """A live job recording (or reconnecting to) its stream."""
        return self.live_state_now in {"starting", "recording", "reconnecting"}
