"""The speed a progress bar shows: bytes over the last few seconds, never a burst's.

rich's own speed divides the bytes of its samples by the time between the first and the last;
when bytes arrive in batches (from ``-P`` child processes every 50 ms) or a resumed file's bytes
on disk are counted at once, that time is a few milliseconds and the speed shown is absurd. This
meter counts only bytes that were downloaded, over a window of seconds, and never divides by less
than ``min_span_s``.
"""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Bytes per second over the last ``window_s``, from the time measuring started.

    ``add`` runs on the thread that receives progress, ``rate`` on the display's refresh thread:
    ``rate`` works on a copy of the samples and never changes them.
    """

    def __init__(self, started_at: float, window_s: float = 3.0, min_span_s: float = 1.0) -> None:
        self.started_at = started_at
        self.window_s = window_s
        self.min_span_s = min_span_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, nbytes: int) -> None:
        """``nbytes`` downloaded at time ``at`` (monotonic seconds)."""
        self._samples.append((at, nbytes))
        horizon = at - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def rate(self, now: float) -> float:
        """Bytes per second at ``now``: the window's bytes over the window's span (at least
        ``min_span_s``; shorter while measuring has not yet run for a whole window)."""
        horizon = now - self.window_s
        recent = sum(n for at, n in list(self._samples) if at >= horizon)
        span = max(min(now - self.started_at, self.window_s), self.min_span_s)
        return recent / span
