"""The connections of one attempt (lanes): each fills a segment, then asks the plan for more.

A free lane takes an idle segment, else steals half of the largest remaining range (aria2's
dynamic split), else, in the endgame, a slow lane's whole tail when it would finish it much
sooner. A lane retries transient failures with backoff from where it stopped. ``supervise``,
called on the attempt's ticks, cuts lanes that stay below the lowest-speed limit (they
reconnect until the file's stall budget is spent) and starts a lane to help a straggler.
The bytes go to the attempt's ``partwriter.PartWriter``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from hauler.errors import (
    ConnectionFailed,
    HaulerError,
    OriginChanged,
    RangeIgnored,
    Stalled,
    Transient,
)
from hauler.policy.progress import StallBudget
from hauler.policy.retry import Action
from hauler.progress import TransferEvents
from hauler.redact import redact_url
from hauler.transfer.attempt import AttemptContext
from hauler.transfer.body import Body, Fetcher, RangeAsk, Reply
from hauler.transfer.partfile import Validators
from hauler.transfer.partwriter import PartWriter
from hauler.transfer.segments import Segment, SegmentPlan, should_take_over
from hauler.transfer.throttle import delay_all

_log = logging.getLogger(__name__)

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
class Lanes:
    """The lanes of one attempt, filling ``writer``'s plan of one version of a file.

    Up to ``connections`` lanes run at once (one without ranges, and never more than the plan
    has room for at the minimum split); ``fetched`` counts every byte they brought.
    """

    attempt: AttemptContext
    fetcher: Fetcher
    writer: PartWriter
    is_ranged: bool
    connections: int
    events: TransferEvents
    started_at: float  # the attempt's start: where the stall budget counts from
    fetched: int = 0
    lanes: list[Lane] = field(default_factory=list)
    best_bps: float = 0.0
    group: asyncio.TaskGroup | None = None
    stalls: StallBudget | None = None  # built at the first stall
    plan: SegmentPlan = field(init=False)
    url: str = field(init=False)
    validators: Validators = field(init=False)
    target: int = field(init=False)  # how many lanes the file runs on

    def __post_init__(self) -> None:
        writer = self.writer
        self.plan, self.url, self.validators = writer.plan, writer.url, writer.validators
        self.target = 1
        if self.is_ranged:
            room = self.plan.size // self.attempt.settings.min_split_bytes
            self.target = max(1, min(self.connections, room))

    async def run(self, first: Segment | None, body: Body, reply: Reply) -> None:
        """Fill the plan: the first lane on the probe's ``body`` (for ``first``, already marked
        active; None when the probe started where no segment does), others on their own."""
        if self.target == 1 and first is not None:
            # One lane and no room for more: no task group needed (the small-file path).
            await self._lane(self._new_lane(), first, body, reply)
            return
        try:
            async with asyncio.TaskGroup() as group:
                self.group = group
                if first is not None:
                    self._spawn(first, body, reply)
                while len(self.lanes) < self.target and self._spawn(self._claim(None)):
                    pass
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None
        finally:
            self.group = None

    def supervise(self, now: float) -> None:
        """One tick: cut lanes below the lowest-speed limit, help stragglers."""
        if self.attempt.settings.lowest_speed_bps > 0:
            self._cut_slow_lanes(now)
        if len(self.lanes) < self.target:
            # Lanes retire when nothing is left to split; a slow straggler may need help.
            self._spawn(self._claim(None))

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
        read, write, buckets = body.read, self.writer.write, self.attempt.buckets
        while True:
            data = await read()
            if not data:
                break
            room = segment.end - segment.pos
            if len(data) > room:  # the segment was shortened (stolen) meanwhile
                data = data[:room]
            write(segment, data)
            nbytes = len(data)
            lane.fetched += nbytes
            self.fetched += nbytes
            if buckets and (delay_s := delay_all(buckets, nbytes)) > 0:
                lane.held_until = self.attempt.clock.monotonic() + delay_s
                await self.attempt.clock.sleep(delay_s)
            if segment.pos >= segment.end:
                return
        self._body_ended(segment, reply)

    def _body_ended(self, segment: Segment, reply: Reply) -> None:
        """The body ended cleanly: fine for a stream of unknown length, short otherwise."""
        if reply.validators.size is None and reply.length is None and not self.is_ranged:
            segment.end = segment.pos
            self.plan.size = segment.pos
            return
        if segment.remaining > 0:
            raise ConnectionFailed(
                f"{redact_url(self.url)}: the body ended at byte {segment.pos}, expected more"
            )

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


def _same_version(ours: Validators, theirs: Validators, is_ranged: bool) -> bool:
    """Is ``theirs`` the version being written? Anything is, for a stream of unknown length;
    without ranges and a size, the ETag alone says."""
    if ours.size is None:
        return True
    if not is_ranged and theirs.size is None:
        return ours.etag == theirs.etag
    return ours.same_version(theirs)


def first_error(group_error: BaseExceptionGroup[BaseException]) -> BaseException:
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
