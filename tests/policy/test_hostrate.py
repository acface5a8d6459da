"""Host budgets: the token bucket keeps the rate over any window (debt queues requests at the
rate), a cooldown follows Retry-After or the default, and AIMD halves on throttling (once per
settle time), grows 10 % a minute of success, within the floor and the configured limit."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hauler.clock import FakeClock
from hauler.policy.hostrate import (
    FLOOR_PER_S,
    Adapted,
    Bucket,
    HostEvent,
    adapt,
    cooldown_until,
)


def test_a_full_bucket_serves_its_burst_at_once_then_one_per_interval() -> None:
    clock = FakeClock()
    bucket = Bucket.full(rate_per_s=10, burst=3, now=clock.now())
    waits = []
    for _ in range(6):
        bucket, wait_s = bucket.take(clock.now())
        waits.append(round(wait_s, 9))
    assert waits == [0, 0, 0, 0.1, 0.2, 0.3]  # each later request queued 0.1 s after the last


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = Bucket(rate_per_s=2, burst=4, tokens=0, updated_at=clock.now())
    clock.advance(1.0)
    assert bucket.refilled(clock.now()).tokens == pytest.approx(2)
    clock.advance(100)
    assert bucket.refilled(clock.now()).tokens == 4
    assert bucket.refilled(clock.now() - 1000).tokens == 0  # an earlier time refills nothing


@given(
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=300),
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 20),
)
def test_sends_never_exceed_burst_plus_rate_times_any_window(
    gaps: list[float], rate: float, burst: int
) -> None:
    # Every request sends at (take time + wait); in any window [t0, t1] the sends are at most
    # burst + rate * (t1 - t0): what a token bucket promises, debt or not.
    now = 0.0
    bucket = Bucket.full(rate, burst, now)
    sends = []
    for gap in gaps:
        now += gap
        bucket, wait_s = bucket.take(now)
        sends.append(now + wait_s)
    sends.sort()
    for i in range(len(sends)):
        for j in range(i, min(len(sends), i + 60)):
            assert j - i + 1 <= burst + rate * (sends[j] - sends[i]) + 1e-6


def test_with_rate_keeps_the_tokens_earned_at_the_old_rate() -> None:
    bucket = Bucket(rate_per_s=1, burst=10, tokens=0, updated_at=0.0)
    slower = bucket.with_rate(0.5, now=4.0)
    assert (slower.tokens, slower.rate_per_s) == (4.0, 0.5)
    assert slower.refilled(6.0).tokens == pytest.approx(5.0)


def test_a_bucket_needs_a_positive_rate_and_a_burst() -> None:
    with pytest.raises(ValueError):
        Bucket(0, 1, 1, 0)
    with pytest.raises(ValueError):
        Bucket(1, 0.5, 1, 0)


def test_cooldown_follows_retry_after_else_the_default_and_honours_a_cap() -> None:
    assert cooldown_until(100.0, 5.0, 30.0) == 105.0
    assert cooldown_until(100.0, None, 30.0) == 130.0
    assert cooldown_until(100.0, -3.0, 30.0) == 130.0
    assert cooldown_until(100.0, math.nan, 30.0) == 130.0
    assert cooldown_until(100.0, 0.0, 30.0) == 100.0
    assert cooldown_until(100.0, 86400.0, 30.0, max_s=600.0) == 700.0


def test_throttling_halves_the_rate_once_per_settle_time_down_to_the_floor() -> None:
    first = adapt(8.0, 10.0, HostEvent.THROTTLED, now=100.0, last_change_at=0.0)
    assert first == Adapted(4.0, 100.0)
    # the other in-flight requests' 429s in the same second: the same overload, no new halving
    again = adapt(first.rate_per_s, 10.0, HostEvent.THROTTLED, 100.5, first.changed_at)
    assert again == first
    later = adapt(first.rate_per_s, 10.0, HostEvent.THROTTLED, 101.0, first.changed_at)
    assert later == Adapted(2.0, 101.0)
    for step in range(20):
        later = adapt(later.rate_per_s, 10.0, HostEvent.THROTTLED, 102.0 + step, later.changed_at)
    assert later.rate_per_s == FLOOR_PER_S


def test_success_grows_the_rate_ten_percent_a_minute_up_to_the_limit() -> None:
    rate, changed = 4.0, 0.0
    assert adapt(rate, 10.0, HostEvent.SUCCESS, 59.9, changed) == Adapted(4.0, 0.0)
    grown = adapt(rate, 10.0, HostEvent.SUCCESS, 60.0, changed)
    assert grown.rate_per_s == pytest.approx(4.4) and grown.changed_at == 60.0
    assert grown.is_change_from(4.0)
    now = 60.0
    for _ in range(30):
        now += 60
        grown = adapt(grown.rate_per_s, 10.0, HostEvent.SUCCESS, now, grown.changed_at)
    assert grown.rate_per_s == 10.0  # the configured limit, never above


def test_a_rate_above_a_lowered_limit_comes_down_to_it() -> None:
    assert adapt(20.0, 5.0, HostEvent.SUCCESS, 1000.0, 0.0).rate_per_s == 5.0
    assert adapt(20.0, 5.0, HostEvent.THROTTLED, 1000.0, 0.0).rate_per_s == 5.0


def test_the_floor_never_exceeds_the_limit() -> None:
    assert adapt(0.05, 0.05, HostEvent.THROTTLED, 10.0, 0.0).rate_per_s == 0.05
