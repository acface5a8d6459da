"""The progress rule of one attempt at a file: give up on a file that only trickles.

A lane below the lowest-speed limit is cut and reconnects, and any progress restarts its
segment's retry count (resets every few MiB must not fail a file that keeps moving). A server
that sends one byte every few seconds therefore held a lane forever. This rule counts the stall
reconnects of the whole file and gives up when its last ``max_stalls`` of them came while the
file, all lanes together, averaged below ``lowest_speed_bps`` since the stall before them (or
since the attempt began).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class StallBudget:
    """Stall reconnects of one file, judged against the lowest speed; pure, clock passed in.

    ``max_stalls`` 0 never gives up (every stall is only retried).
    """

    max_stalls: int
    lowest_speed_bps: float
    started_at: float
    # (time, bytes fetched so far) at the start and at each stall: the last max_stalls + 1.
    _marks: deque[tuple[float, int]] = field(init=False)

    def __post_init__(self) -> None:
        self._marks = deque([(self.started_at, 0)], maxlen=max(1, self.max_stalls) + 1)

    def is_spent(self, now: float, fetched_bytes: int) -> bool:
        """Count a stall reconnect at ``now``, with ``fetched_bytes`` fetched by the attempt so
        far; True when the file should fail instead of reconnecting."""
        self._marks.append((now, fetched_bytes))
        if self.max_stalls <= 0 or len(self._marks) <= self.max_stalls:
            return False
        since, fetched_then = self._marks[0]
        return fetched_bytes - fetched_then < self.lowest_speed_bps * (now - since)
