"""Time as a seam: real in production, fake in tests (leases, backoff, bans without sleeping).

Every wait in ``src/`` goes through a ``Clock``: ``sleep`` for a wait on time alone,
``wait_for`` for "this event, or give up after so long". ``FakeClock`` makes both instant and
deterministic: time moves only when a test (``advance``) or a sleeper moves it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any, Protocol


class Clock(Protocol):
    """Where time comes from. ``now`` is epoch seconds; ``monotonic`` never goes back."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (nothing for zero or less; still a point where others run)."""
        ...

    async def wait_for(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait until ``event`` is set or ``timeout_s`` passes: True when it was set."""
        ...


async def yield_now() -> None:
    """Let the other tasks run once: a yield, not a wait (no time passes on any clock)."""
    await asyncio.sleep(0)


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, event: asyncio.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await event.wait()
        except TimeoutError:
            return False
        return True


class FakeClock:
    """A clock that moves only when told, so time-driven code runs at once and the same way
    every run.

    - ``advance(s)`` moves both clocks forward and wakes every waiter whose deadline passed.
    - ``sleep(s)`` is a wait on time alone, so it moves time itself: it registers its deadline,
      lets the loop run once (tasks sleeping at the same moment register theirs too), then
      jumps from deadline to deadline, the earliest first, each time letting the tasks it woke
      run, until its own is reached. Sleeps that overlap in real code overlap here: lanes
      sleeping 1 s and 2 s at once wake at +1 s and +2 s, not +3 s (a rate limit measured
      against this clock is the rate the code would keep in real time).
    - ``wait_for(event, timeout_s)`` never moves time: it returns True when ``event`` is set, or
      False once someone else (``advance``, a sleeper) has moved time past its deadline. A test
      drives a loop that polls on a timeout by advancing the clock.

    Borrowed idea: trio's ``MockClock`` with ``autojump_threshold=0`` jumps to the next
    deadline when every task is blocked; asyncio cannot see that, so only sleepers jump.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``; wake the waiters now due."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self._mono += seconds
        while self._waiters and self._waiters[0][0] <= self._mono:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)

    def pending(self) -> int:
        """How many waits are waiting for time to move (a test's check that a loop waits)."""
        return sum(1 for _, _, waiter in self._waiters if not waiter.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await yield_now()
            return
        waiter = self._waiter(self._mono + seconds)
        try:
            await yield_now()
            while not waiter.done():
                self._jump_to_next()
                await yield_now()  # the tasks just woken run (and may sleep again) first
        finally:
            waiter.cancel()

    async def wait_for(self, event: asyncio.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        if timeout_s <= 0:
            await yield_now()
            return event.is_set()
        waiter = self._waiter(self._mono + timeout_s)
        setter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait([setter, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            setter.cancel()
            waiter.cancel()
        return event.is_set()

    def _jump_to_next(self) -> None:
        """Advance to the earliest deadline still waited for, waking what is due there."""
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)
        if self._waiters:
            self.advance(max(0.0, self._waiters[0][0] - self._mono))

    def _waiter(self, deadline: float) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (deadline, next(self._order), waiter))
        return waiter
