"""The clock seam: FakeClock waits without waiting, SystemClock really waits (briefly)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hauler.clock import FakeClock, SystemClock


async def test_fake_sleep_moves_time_and_returns_at_once() -> None:
    clock = FakeClock(start=100.0)
    began = time.monotonic()
    await clock.sleep(3600.0)
    assert time.monotonic() - began < 1.0
    assert (clock.now(), clock.monotonic()) == (3700.0, 4600.0)


async def test_fake_sleeps_that_overlap_move_time_once() -> None:
    """Two lanes sleeping at the same moment: time moves to the later deadline, not the sum."""
    clock = FakeClock()
    start = clock.monotonic()
    woke: list[tuple[str, float]] = []

    async def lane(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic() - start))

    await asyncio.gather(lane("long", 2.0), lane("short", 1.0))
    assert woke == [("short", 1.0), ("long", 2.0)]


async def test_fake_sleep_of_zero_or_less_only_yields() -> None:
    clock = FakeClock()
    await clock.sleep(0)
    await clock.sleep(-5)
    assert clock.monotonic() == 1000.0


async def test_fake_wait_for_returns_true_when_the_event_is_set() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    waiting = asyncio.create_task(clock.wait_for(event, 60.0))
    await asyncio.sleep(0)
    event.set()
    assert await waiting is True
    assert clock.monotonic() == 1000.0
    assert clock.pending() == 0


async def test_fake_wait_for_times_out_only_when_time_is_moved_past_it() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    waiting = asyncio.create_task(clock.wait_for(event, 10.0))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done() and clock.pending() == 1  # nothing moves time by itself
    clock.advance(9.9)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance(0.1)
    assert await waiting is False


async def test_a_sleeper_moving_time_wakes_a_waiter_due_before_it() -> None:
    clock = FakeClock()
    waiting = asyncio.create_task(clock.wait_for(asyncio.Event(), 1.0))
    await asyncio.sleep(0)
    await clock.sleep(5.0)
    assert await waiting is False


async def test_fake_wait_for_an_event_already_set_or_no_timeout() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    assert await clock.wait_for(event, 0.0) is False
    event.set()
    assert await clock.wait_for(event, 0.0) is True


async def test_a_cancelled_fake_sleep_leaves_no_waiter() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    waiting = asyncio.create_task(clock.wait_for(event, 5.0))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert clock.pending() == 0


def test_fake_clock_does_not_go_back() -> None:
    with pytest.raises(ValueError, match="does not go back"):
        FakeClock().advance(-1.0)


async def test_system_clock_waits_for_the_event_or_the_timeout() -> None:
    clock = SystemClock()
    event = asyncio.Event()
    assert await clock.wait_for(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await clock.wait_for(event, 5.0) is True
    await clock.sleep(-1.0)  # a negative wait is no wait, not an error
