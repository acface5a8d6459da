"""The decisions of an HLS live recording, pure: which segments to fetch from each playlist
load, where the recording has a gap and how long it is, when to load the playlist again, how
long to wait after a failure, and when the stream counts as ended.

A live playlist is a window sliding over the stream's segments, each with a media sequence
number. The follower fetches each number once, in order, from where it left off, so an outage
costs nothing while the segments after it are still in the window; the numbers that left the
window before it came back are a gap, recorded as ``{after_s, missing_s}`` (``after_s``: the
media recorded before it). Times are the caller's clock's, passed in (``Clock.monotonic``).

One ``FollowPolicy`` per recording; the follower tells it each playlist (``on_playlist``), then
the fate of every segment that plan claimed (``on_fetched`` / ``on_missed``, in order) before it
loads the next playlist.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hauler.errors import Bannable, Fatal, HaulerError, LeaseLost, NotFound, Transient
from hauler.policy.retry import RetryPolicy

# Before the first playlist says its target duration: RFC 8216's example value, and what a
# reload interval of players defaults to.
DEFAULT_TARGET_S = 6.0
# MPEG-TS timestamps count 90 kHz ticks in 33 bits: they wrap every ~26.5 hours.
PTS_WRAP_S = 2**33 / 90_000
# How far a segment's first timestamp may be from where the one before it ended and still run
# on: EXTINF durations are rounded (whole seconds before protocol version 3).
TIMESTAMP_SLACK_S = 1.0


class EndReason(StrEnum):
    """Why a recording ended."""

    ENDLIST = "endlist"  # the playlist said #EXT-X-ENDLIST
    OFFLINE = "offline"  # nothing new for longer than the offline grace
    MAX_DURATION = "max_duration"  # the recording reached its maximum duration
    STOPPED = "stopped"  # asked to stop (the follower's, never the policy's)


class Action(StrEnum):
    """What to do after a failure."""

    RETRY = "retry"  # try again after ``delay_s``
    SKIP = "skip"  # give the segment up: it becomes (part of) a gap
    END = "end"  # the stream is over (``reason``)
    FAIL = "fail"  # raise the error: retrying here cannot help


@dataclass(frozen=True, slots=True)
class Decision:
    """What ``on_failure`` / ``on_segment_failure`` decided."""

    action: Action
    delay_s: float = 0.0
    reason: EndReason | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A media playlist as the policy sees it: the first sequence number, every segment's
    duration (oldest first), the target duration, ENDLIST, and the program date (epoch
    seconds) of each segment where the playlist gives one."""

    first_sequence: int
    durations_s: tuple[float, ...]
    target_duration_s: float
    is_ended: bool = False
    dates: tuple[float | None, ...] = ()

    @property
    def last_sequence(self) -> int:
        """The newest segment's number (``first_sequence - 1`` for an empty window)."""
        return self.first_sequence + len(self.durations_s) - 1

    def duration_of(self, sequence: int) -> float:
        """The duration of segment ``sequence`` (in the window)."""
        return self.durations_s[sequence - self.first_sequence]

    def date_of(self, sequence: int) -> float | None:
        """The program date of segment ``sequence``, None when unknown."""
        index = sequence - self.first_sequence
        return self.dates[index] if 0 <= index < len(self.dates) else None


@dataclass(frozen=True, slots=True)
class Gap:
    """Media the stream offered that the recording lacks: ``segments`` numbers from
    ``first_sequence`` on, about ``missing_s`` long, after ``after_s`` of recorded media."""

    after_s: float
    missing_s: float
    first_sequence: int
    segments: int

    def record(self) -> dict[str, float]:
        """The JSON-able ``{after_s, missing_s}`` a job's result lists."""
        return {"after_s": round(self.after_s, 3), "missing_s": round(self.missing_s, 3)}


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one playlist load: fetch ``fetch`` (in order, up to ``parallel`` at
    once); ``gap``: what left the window since the last load; ``is_reset``: the stream's
    numbering started over (a new stream: start a new part)."""

    fetch: tuple[int, ...]
    parallel: int
    gap: Gap | None = None
    is_changed: bool = False
    is_reset: bool = False


@dataclass(frozen=True, slots=True)
class LiveRules:
    """The knobs of a recording.

    ``start_segments``: where a new recording starts, in segments back from the live edge
    (None: the oldest segment of the window, so nothing the stream still offers is lost).
    ``segment_tries``: tries of one segment before it is given up (a gap).
    """

    offline_grace_s: float = 60.0
    max_duration_s: float | None = None
    max_parallel: int = 4
    retry_base_s: float = 0.5
    segment_tries: int = 3
    start_segments: int | None = None

    def __post_init__(self) -> None:
        if self.offline_grace_s < 0 or self.retry_base_s <= 0:
            raise ValueError("the offline grace and the retry base must be positive")
        if self.max_parallel < 1 or self.segment_tries < 1:
            raise ValueError("max_parallel and segment_tries must be at least 1")
        if self.start_segments is not None and self.start_segments < 1:
            raise ValueError("start_segments must be at least 1 (None: the whole window)")


@dataclass(frozen=True, slots=True)
class _Claim:
    sequence: int
    duration_s: float
    date: float | None


@dataclass(slots=True)
class FollowPolicy:
    """The state of one recording's decisions (pure: times are passed in).

    ``resume_after``: the last sequence number an earlier run recorded (a worker that took the
    job over): the recording goes on after it while the window still holds it.
    """

    rules: LiveRules
    started_at: float
    resume_after: int | None = None
    recorded_s: float = 0.0
    gaps: list[Gap] = field(default_factory=list)
    fetched: int = 0
    _next: int | None = None
    _claims: deque[_Claim] = field(default_factory=deque)
    _gap_open: bool = False
    _progress_at: float = 0.0
    _failures: int = 0
    _target_s: float = DEFAULT_TARGET_S
    _window_s: float = 0.0
    _is_ended: bool = False
    _seen_s: float = 0.0
    _seen: int = 0
    _edge_date: float | None = None  # where the last claimed segment ends, by program date

    def __post_init__(self) -> None:
        self._progress_at = self.started_at

    @property
    def missing_s(self) -> float:
        """The media of every gap so far."""
        return sum(gap.missing_s for gap in self.gaps)

    @property
    def covered_s(self) -> float:
        """The media recorded, missed and claimed so far: how far into the stream we are."""
        return self.recorded_s + self.missing_s + sum(c.duration_s for c in self._claims)

    @property
    def next_sequence(self) -> int | None:
        """The sequence number wanted next (None before the first playlist)."""
        return self._next

    # --- playlists ---------------------------------------------------------------------------

    def on_playlist(self, window: Window, now: float) -> Plan:
        """Take a freshly loaded playlist: the segments to fetch, and the gap, if any, of what
        left the window meanwhile. Every segment claimed before must be resolved first."""
        if self._claims:
            raise RuntimeError("every claimed segment must be fetched or missed first")
        self._failures = 0
        self._target_s = window.target_duration_s or DEFAULT_TARGET_S
        self._window_s = sum(window.durations_s)
        was_ended, self._is_ended = self._is_ended, self._is_ended or window.is_ended
        is_reset = self._start_or_reset(window)
        if self._next is None or window.last_sequence < self._next - 1:  # a stale copy
            return Plan((), 1, is_changed=self._is_ended != was_ended)
        gap = self._departed(window)
        fetch = self._claim(window)
        if fetch or gap is not None or is_reset:
            self._progress_at = now
        parallel = max(1, min(self.rules.max_parallel, len(fetch)))
        is_changed = bool(fetch) or gap is not None or is_reset or self._is_ended != was_ended
        return Plan(fetch, parallel, gap, is_changed, is_reset)

    def _start_or_reset(self, window: Window) -> bool:
        """Choose where to start (first load, or the numbering started over); True on a reset."""
        if self._next is None:
            self._next = self._first_wanted(window)
            return False
        if window.last_sequence >= self._next - 1 or not self._is_new_stream(window):
            return False
        self._next = self._edge_start(window)
        self._edge_date = None
        return True

    def _first_wanted(self, window: Window) -> int:
        after = self.resume_after
        if after is not None and after <= window.last_sequence:
            return after + 1  # before the window: the difference is a gap
        return self._edge_start(window)

    def _edge_start(self, window: Window) -> int:
        back = self.rules.start_segments
        if back is None:
            return window.first_sequence
        return max(window.first_sequence, window.last_sequence + 1 - back)

    def _is_new_stream(self, window: Window) -> bool:
        """Behind us: a stale copy of the playlist (a CDN's), or a stream numbered anew? Newer
        dates than ours, or more than a window behind, say new."""
        newest = window.dates[-1] if window.dates else None
        if newest is not None and self._edge_date is not None:
            return newest >= self._edge_date
        assert self._next is not None
        return window.last_sequence < self._next - 1 - len(window.durations_s)

    def _departed(self, window: Window) -> Gap | None:
        """The numbers between the last claimed one and the window's first: lost."""
        assert self._next is not None
        count = window.first_sequence - self._next
        if count <= 0:
            return None
        first_date = window.date_of(window.first_sequence)
        if first_date is not None and self._edge_date is not None and first_date > self._edge_date:
            missing = first_date - self._edge_date
        else:
            missing = count * self._mean_duration_s(window)
        gap = self._add_gap(self._next, count, missing)
        self._next = window.first_sequence
        return gap

    def _mean_duration_s(self, window: Window) -> float:
        if self._seen:
            return self._seen_s / self._seen
        if window.durations_s:
            return sum(window.durations_s) / len(window.durations_s)
        return window.target_duration_s

    def _claim(self, window: Window) -> tuple[int, ...]:
        assert self._next is not None
        limit = self.rules.max_duration_s
        covered = self.covered_s
        claimed: list[int] = []
        for sequence in range(self._next, window.last_sequence + 1):
            if limit is not None and covered >= limit:
                break
            duration = window.duration_of(sequence)
            date = window.date_of(sequence)
            self._claims.append(_Claim(sequence, duration, date))
            claimed.append(sequence)
            covered += duration
            self._seen_s, self._seen = self._seen_s + duration, self._seen + 1
            self._edge_date = date + duration if date is not None else None
        if claimed:
            self._next = claimed[-1] + 1
        return tuple(claimed)

    # --- the claimed segments ----------------------------------------------------------------

    def on_fetched(self, sequence: int) -> float:
        """Segment ``sequence`` (the oldest claimed) is recorded; its duration."""
        claim = self._resolve(sequence)
        self.recorded_s += claim.duration_s
        self.fetched += 1
        self._gap_open = False
        return claim.duration_s

    def on_missed(self, sequence: int) -> Gap:
        """Segment ``sequence`` (the oldest claimed) was given up: the gap it is part of."""
        claim = self._resolve(sequence)
        return self._add_gap(sequence, 1, claim.duration_s)

    def _resolve(self, sequence: int) -> _Claim:
        if not self._claims or self._claims[0].sequence != sequence:
            raise ValueError(f"segment {sequence} is not the oldest claimed one")
        return self._claims.popleft()

    def _add_gap(self, first: int, count: int, missing_s: float) -> Gap:
        """A new gap, or the open one (nothing recorded since) made longer."""
        if self._gap_open and self.gaps:
            last = self.gaps[-1]
            gap = replace(
                last, missing_s=last.missing_s + missing_s, segments=last.segments + count
            )
            self.gaps[-1] = gap
        else:
            gap = Gap(self.recorded_s, missing_s, first, count)
            self.gaps.append(gap)
        self._gap_open = True
        return gap

    # --- timing, failures, the end -----------------------------------------------------------

    def next_load_at(self, loaded_at: float, is_changed: bool) -> float:
        """When to load the playlist again (RFC 8216 6.3.4), counted from when the last load
        began: a target duration after a changed playlist, half of one after the same one."""
        return loaded_at + (self._target_s if is_changed else self._target_s / 2)

    def on_failure(
        self, error: BaseException, now: float, rng: random.Random | None = None
    ) -> Decision:
        """A playlist load failed (reset, stall, 5xx, 404…): retry after a backoff capped at
        the target duration, end once offline for the grace, fail on what a retry cannot fix
        (403, 410, a bot wall: the caller re-extracts or rotates)."""
        if _is_final(error):
            return Decision(Action.FAIL)
        self._failures += 1
        deadline = self._progress_at + self.rules.offline_grace_s
        if now >= deadline:
            return Decision(Action.END, reason=EndReason.OFFLINE)
        delay = self._backoff_s(self._failures, self._target_s, rng)
        retry_after = error.retry_after_s if isinstance(error, Transient) else None
        if retry_after is not None:
            # As the origin asks, up to the window: waiting longer would lose segments.
            delay = max(delay, min(retry_after, self._window_s))
        return Decision(Action.RETRY, min(delay, deadline - now))

    def on_segment_failure(
        self, error: BaseException, tries: int, rng: random.Random | None = None
    ) -> Decision:
        """Try ``tries`` of a segment failed: retry soon (within half a target duration), give
        it up after ``segment_tries``, fail on what a retry cannot fix."""
        if _is_final(error):
            return Decision(Action.FAIL)
        if tries >= self.rules.segment_tries:
            return Decision(Action.SKIP)
        return Decision(Action.RETRY, self._backoff_s(tries, self._target_s / 2, rng))

    def _backoff_s(self, attempt: int, cap_s: float, rng: random.Random | None) -> float:
        cap = max(self.rules.retry_base_s, cap_s)
        return RetryPolicy(base_s=self.rules.retry_base_s, cap_s=cap).backoff_s(attempt, rng)

    def end_reason(self, now: float) -> EndReason | None:
        """Why the recording is over at ``now``, or None while it goes on (asked once the
        claimed segments are resolved)."""
        limit = self.rules.max_duration_s
        if limit is not None and self.covered_s >= limit:
            return EndReason.MAX_DURATION
        if self._is_ended and not self._claims:
            return EndReason.ENDLIST
        if now - self._progress_at >= self.rules.offline_grace_s:
            return EndReason.OFFLINE
        return None


def timestamps_run_on(previous_start_s: float, previous_duration_s: float, start_s: float) -> bool:
    """Does a segment whose first timestamp is ``start_s`` follow on from the one before it
    (first timestamp ``previous_start_s``, ``previous_duration_s`` long)? If not, its encoder
    started its clock again: it begins a new part. Wrap-around of the 33-bit clock runs on."""
    drift = (start_s - previous_start_s - previous_duration_s) % PTS_WRAP_S
    return min(drift, PTS_WRAP_S - drift) <= TIMESTAMP_SLACK_S


def _is_final(error: BaseException) -> bool:
    """An error a reconnect cannot fix: fatal (but 404: a live playlist is missing while the
    stream is down), a ban, a lost lease, or no error of ours at all."""
    if isinstance(error, NotFound):
        return False
    return isinstance(error, Fatal | Bannable | LeaseLost) or not isinstance(error, HaulerError)
