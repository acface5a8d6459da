"""Pure segment planning: split ``[0, size)``, steal half of the largest remaining range, endgame.

A plan's segments always cover ``[0, size)`` exactly once. Each segment is ``[start, end)`` with
``pos`` the next byte to fetch; ``[start, pos)`` is on disk. Stealing shrinks a segment's ``end``
(its connection stops there and drops the rest of its response) and appends the tail as a new
segment, so coverage never overlaps and no byte is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# A takeover reopens a connection; count that as this much transfer time lost.
TAKEOVER_COST_S = 0.2


@dataclass(slots=True)
class Segment:
    """``[start, end)`` of the file; ``[start, pos)`` is written."""

    start: int
    end: int
    pos: int
    is_active: bool = False

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    @property
    def done_bytes(self) -> int:
        return self.pos - self.start


class SegmentPlan:
    """The segments of one file and the decisions about who fetches what next."""

    def __init__(self, size: int, segments: Iterable[Segment], min_split_bytes: int) -> None:
        self.size = size
        self.segments = list(segments)
        self.min_split_bytes = max(1, min_split_bytes)

    @classmethod
    def initial(cls, size: int, connections: int, min_split_bytes: int) -> SegmentPlan:
        """``size`` in up to ``connections`` equal segments of at least ``min_split_bytes``."""
        count = max(1, min(connections, size // max(1, min_split_bytes)))
        bounds = [size * i // count for i in range(count + 1)]
        segments = [Segment(bounds[i], bounds[i + 1], bounds[i]) for i in range(count)]
        return cls(size, segments, min_split_bytes)

    @property
    def done_bytes(self) -> int:
        return sum(segment.done_bytes for segment in self.segments)

    @property
    def is_complete(self) -> bool:
        return all(segment.remaining == 0 for segment in self.segments)

    def next_idle(self) -> Segment | None:
        """An unfinished segment no connection is working on (from a resume or a failure)."""
        for segment in self.segments:
            if not segment.is_active and segment.remaining > 0:
                return segment
        return None

    def segment_at(self, offset: int) -> Segment | None:
        """The idle unfinished segment whose next byte is ``offset``."""
        for segment in self.segments:
            if not segment.is_active and segment.pos == offset and segment.remaining > 0:
                return segment
        return None

    def steal(self) -> Segment | None:
        """Split the largest active remaining range in half and return the new tail segment.

        Only while the half is at least ``min_split_bytes``; None otherwise.
        """
        victim = max(
            (s for s in self.segments if s.is_active), key=lambda s: s.remaining, default=None
        )
        if victim is None or victim.remaining < 2 * self.min_split_bytes:
            return None
        mid = victim.pos + victim.remaining // 2
        tail = Segment(mid, victim.end, mid)
        victim.end = mid
        self.segments.append(tail)
        return tail

    def take_over(self, victim: Segment) -> Segment:
        """Move ``victim``'s whole remaining range to a new segment (endgame)."""
        tail = Segment(victim.pos, victim.end, victim.pos)
        victim.end = victim.pos
        self.segments.append(tail)
        return tail

    def compact(self) -> None:
        """Drop empty segments (all coverage is kept)."""
        self.segments = [s for s in self.segments if s.end > s.start]


def is_valid_cover(segments: Iterable[Segment], size: int) -> bool:
    """True when ``segments`` cover ``[0, size)`` exactly once with sane positions."""
    pos = 0
    for segment in sorted(segments, key=lambda s: (s.start, s.end)):
        if segment.start != pos or not segment.start <= segment.pos <= segment.end:
            return False
        pos = segment.end
    return pos == size


def should_take_over(remaining: int, victim_bps: float, thief_bps: float) -> bool:
    """Endgame: is a fresh connection at ``thief_bps`` much faster at finishing ``remaining``?

    True when the victim would need more than twice as long, counting a reconnect's cost.
    """
    if remaining <= 0 or thief_bps <= 0:
        return False
    victim_eta = remaining / max(victim_bps, 1.0)
    thief_eta = remaining / thief_bps + TAKEOVER_COST_S
    return victim_eta > 2 * thief_eta
