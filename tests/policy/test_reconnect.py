"""The FLV recorder's reconnect decisions on a FakeClock: at once after a drop, then an
equal-jitter backoff capped, final failures (401/403/400, 410, bans) fail, a 404 retries, a
gap per reconnect after media (the media before it, the time from the drop to the next media),
and the ends: offline for the grace (never online counts) and the maximum duration."""

from __future__ import annotations

import random

import pytest

from hauler.clock import FakeClock
from hauler.errors import (
    BadRequest,
    BotCheck,
    ConnectionFailed,
    ConnectionRefused,
    Forbidden,
    Gone,
    LeaseLost,
    NotFound,
    Stalled,
    Transient,
)
from hauler.policy.live import Action, EndReason, LiveRules
from hauler.policy.reconnect import ReconnectPolicy, is_final


def policy(clock: FakeClock, **rules: object) -> ReconnectPolicy:
    return ReconnectPolicy(LiveRules(**rules), clock.monotonic())  # type: ignore[arg-type]


def test_the_first_reconnect_after_media_is_at_once_then_it_backs_off_capped() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=1000.0, retry_base_s=0.5)
    reconnect.on_media(1.0, clock.monotonic())
    rng = random.Random(7)
    delays = []
    for _ in range(10):
        decision = reconnect.on_drop(ConnectionRefused(), clock.monotonic(), rng)
        assert decision.action is Action.RETRY
        delays.append(decision.delay_s)
        clock.advance(decision.delay_s)
    assert delays[0] == 0.0
    # Equal jitter: the n-th retry waits in [c/2, c], c = min(cap, base * 2**(n-1)).
    for n, delay in enumerate(delays[1:], start=1):
        ceiling = min(reconnect.cap_s, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= reconnect.cap_s == 5.0
    assert delays[-1] >= 2.5  # it did reach the cap


def test_media_resets_the_backoff() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=1000.0)
    for _ in range(5):
        reconnect.on_drop(ConnectionFailed(), clock.monotonic())
    reconnect.on_media(0.5, clock.monotonic())
    assert reconnect.on_drop(ConnectionFailed(), clock.monotonic()).delay_s == 0.0
    assert reconnect.on_drop(ConnectionFailed(), clock.monotonic()).delay_s > 0.0


@pytest.mark.parametrize(
    "error",
    [Forbidden("401"), Forbidden("403"), Forbidden("400"), Gone(), BadRequest("not FLV")],
)
def test_what_a_reconnect_cannot_fix_fails_at_once(error: Exception) -> None:
    clock = FakeClock()
    reconnect = policy(clock)
    reconnect.on_media(1.0, clock.monotonic())
    assert reconnect.on_drop(error, clock.monotonic()).action is Action.FAIL


@pytest.mark.parametrize(
    ("error", "final"),
    [
        (NotFound("404: the room is off the air"), False),
        (Transient("502"), False),
        (Stalled(), False),
        (ConnectionRefused(), False),
        (ConnectionFailed("reset"), False),
        (BotCheck(), True),
        (LeaseLost(), True),
        (RuntimeError("a bug"), True),
    ],
)
def test_which_errors_are_final(error: BaseException, final: bool) -> None:
    assert is_final(error) is final


def test_a_reconnect_after_media_is_one_gap_from_the_drop_to_the_next_media() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=60.0)
    assert reconnect.on_media(4.0, clock.monotonic()) is None  # the first media: no gap
    clock.advance(4.0)
    assert reconnect.on_media(2.0, clock.monotonic()) is None
    clock.advance(2.0)  # a stall: noticed a read timeout after the last media
    reconnect.on_drop(Stalled(), clock.monotonic())
    clock.advance(1.0)
    reconnect.on_drop(ConnectionRefused(), clock.monotonic())  # still away: the same gap
    clock.advance(2.5)
    gap = reconnect.on_media(0.04, clock.monotonic())
    assert gap is not None and reconnect.gaps == [gap]
    assert gap.record() == {"after_s": 6.0, "missing_s": 5.5}  # from the last media
    assert reconnect.recorded_s == pytest.approx(6.04)
    assert reconnect.on_media(1.0, clock.monotonic()) is None  # the gap is closed
    assert reconnect.connections == 2


def test_failures_before_any_media_are_no_gap() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=60.0)
    for _ in range(3):
        reconnect.on_drop(ConnectionRefused(), clock.monotonic())
        clock.advance(1.0)
    assert reconnect.on_media(1.0, clock.monotonic()) is None and reconnect.gaps == []


def test_a_stream_that_never_comes_up_ends_offline_after_the_grace() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=10.0, retry_base_s=0.5)
    waited = 0.0
    for _ in range(100):  # bounded: the grace ends it long before
        decision = reconnect.on_drop(ConnectionRefused(), clock.monotonic())
        if decision.action is Action.END:
            break
        assert decision.delay_s <= 10.0 - waited + 1e-9  # never waits past the grace
        clock.advance(decision.delay_s)
        waited += decision.delay_s
    assert decision.action is Action.END and decision.reason is EndReason.OFFLINE
    assert waited == pytest.approx(10.0)
    assert reconnect.gaps == []


def test_the_grace_counts_from_the_last_media() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=5.0)
    clock.advance(100.0)  # a long recording
    reconnect.on_media(100.0, clock.monotonic())
    assert reconnect.end_reason(clock.monotonic()) is None
    reconnect.on_drop(ConnectionFailed(), clock.monotonic())
    clock.advance(4.9)
    assert reconnect.on_drop(ConnectionRefused(), clock.monotonic()).action is Action.RETRY
    clock.advance(0.1)
    decision = reconnect.on_drop(ConnectionRefused(), clock.monotonic())
    assert decision.reason is EndReason.OFFLINE


def test_while_media_flows_it_is_never_offline() -> None:
    clock = FakeClock()
    reconnect = policy(clock, offline_grace_s=5.0)
    reconnect.on_media(0.1, clock.monotonic())
    clock.advance(30.0)  # a long read without a flush is the recorder's stall, not the grace
    assert reconnect.end_reason(clock.monotonic()) is None


def test_the_maximum_duration_ends_it_counting_what_is_pending() -> None:
    clock = FakeClock()
    reconnect = policy(clock, max_duration_s=10.0)
    reconnect.on_media(9.0, clock.monotonic())
    assert not reconnect.is_full() and reconnect.is_full(1.0)
    assert reconnect.end_reason(clock.monotonic()) is None
    reconnect.on_media(1.0, clock.monotonic())
    assert reconnect.end_reason(clock.monotonic()) is EndReason.MAX_DURATION
    decision = reconnect.on_drop(ConnectionFailed(), clock.monotonic())
    assert (decision.action, decision.reason) == (Action.END, EndReason.MAX_DURATION)


def test_no_maximum_is_never_full() -> None:
    clock = FakeClock()
    reconnect = policy(clock)
    reconnect.on_media(1e9, clock.monotonic())
    assert not reconnect.is_full(1e9)


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="cap"):
        ReconnectPolicy(LiveRules(), 0.0, cap_s=-1.0)
