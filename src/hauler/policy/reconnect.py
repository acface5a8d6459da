"""The decisions of a live recording over one long HTTP connection (HTTP-FLV), pure: how long
to wait before the next connection, when a failure is final, when the stream counts as gone
(offline for the grace) or the recording as full (its maximum duration), and the gaps.

A drop (reset, end of the body, a stall, 5xx, 404, refused) is answered by a reconnect at
once, then by a backoff with equal jitter, capped, while the stream stays away; whatever the
stream sent while we were away is lost, so every reconnect after media was recorded is a gap
``{after_s, missing_s}``: ``after_s`` the media recorded before the drop, ``missing_s`` the
wall time from the drop (the last media before it: a stall is noticed only a read timeout
after the bytes stopped) to the first media after it. Times are the caller's clock's
(``Clock.monotonic``), passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hauler.errors import Bannable, Fatal, HaulerError, LeaseLost, NotFound
from hauler.policy.live import Action, Decision, EndReason, Gap, LiveRules
from hauler.policy.retry import RetryPolicy

# The longest wait between two connections: a room back on air is found within this.
RECONNECT_CAP_S = 5.0


@dataclass(slots=True)
class ReconnectPolicy:
    """The state of one recording's reconnect decisions (pure: times are passed in).

    The caller reports each connection's media (``on_media``) and each drop (``on_drop``,
    which decides what comes next); ``end_reason`` says when the recording is over.
    ``cap_s``: the longest backoff; the base is ``rules.retry_base_s``.
    """

    rules: LiveRules
    started_at: float
    cap_s: float = RECONNECT_CAP_S
    recorded_s: float = 0.0
    gaps: list[Gap] = field(default_factory=list)
    connections: int = 0  # connections that brought media
    _failures: int = 0  # drops since media last came
    _progress_at: float = 0.0  # when media last came (or the recording began)
    _dropped_at: float | None = None  # the last media of the connection that dropped
    _is_receiving: bool = False

    def __post_init__(self) -> None:
        if self.cap_s < 0:
            raise ValueError("the backoff cap must not be negative")
        self._progress_at = self.started_at

    def on_media(self, duration_s: float, now: float) -> Gap | None:
        """``duration_s`` of media was recorded at ``now``: the gap it ends, on the first media
        after a drop."""
        gap = None
        if not self._is_receiving:
            self._is_receiving = True
            self.connections += 1
            gap = self._close_gap(now)
        self.recorded_s += max(0.0, duration_s)
        self._failures = 0
        self._progress_at = now
        return gap

    def _close_gap(self, now: float) -> Gap | None:
        dropped_at, self._dropped_at = self._dropped_at, None
        if dropped_at is None:
            return None
        gap = Gap(self.recorded_s, max(0.0, now - dropped_at), self.connections, 0)
        self.gaps.append(gap)
        return gap

    def on_drop(
        self, error: BaseException, now: float, rng: random.Random | None = None
    ) -> Decision:
        """The connection failed or ended with ``error``: fail on what a reconnect cannot fix
        (401/403/400, 410, a ban, no error of ours), end once offline for the grace or at the
        maximum duration, else reconnect (at once after media, then backing off)."""
        if self._is_receiving:
            self._is_receiving = False
            self._dropped_at = self._progress_at
        if is_final(error):
            return Decision(Action.FAIL)
        reason = self.end_reason(now)
        if reason is not None:
            return Decision(Action.END, reason=reason)
        self._failures += 1
        deadline = self._progress_at + self.rules.offline_grace_s
        return Decision(Action.RETRY, min(self.delay_s(self._failures, rng), deadline - now))

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait before the connection after ``failures`` drops in a row without media:
        none after the first (the stream was just there), then equal-jitter backoff from
        ``rules.retry_base_s`` doubling up to ``cap_s``."""
        if failures <= 1:
            return 0.0
        base = self.rules.retry_base_s
        policy = RetryPolicy(base_s=base, cap_s=max(base, self.cap_s))
        return min(self.cap_s, policy.backoff_s(failures - 1, rng))

    def is_full(self, pending_s: float = 0.0) -> bool:
        """Has the recording (with ``pending_s`` not yet reported) reached its maximum?"""
        limit = self.rules.max_duration_s
        return limit is not None and self.recorded_s + pending_s >= limit

    def end_reason(self, now: float) -> EndReason | None:
        """Why the recording is over at ``now``, or None while it goes on: the maximum
        duration, or no media for the offline grace (while not receiving)."""
        if self.is_full():
            return EndReason.MAX_DURATION
        if not self._is_receiving and now - self._progress_at >= self.rules.offline_grace_s:
            return EndReason.OFFLINE
        return None


def is_final(error: BaseException) -> bool:
    """An error a reconnect cannot fix: fatal (but 404: a room's stream is missing while it is
    off the air), a ban, a lost lease, or no error of ours at all."""
    if isinstance(error, NotFound):
        return False
    return isinstance(error, Fatal | Bannable | LeaseLost) or not isinstance(error, HaulerError)
