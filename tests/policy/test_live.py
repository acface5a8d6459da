"""The live follower's decisions on a FakeClock: what to fetch from each playlist, gaps only
where segments left the window unfetched, RFC 8216 reload timing, backoff after failures, and
the three ends (ENDLIST, offline grace, maximum duration)."""

from __future__ import annotations

import random

import pytest

from hauler.clock import FakeClock
from hauler.errors import BotCheck, Forbidden, Gone, LeaseLost, NotFound, Stalled, Transient
from hauler.policy.live import (
    Action,
    EndReason,
    FollowPolicy,
    LiveRules,
    Window,
)

START = 1_800_000_000.0  # program dates of the test stream: segment n starts at START + n


def window(first: int, size: int, *, dated: bool = True, ended: bool = False) -> Window:
    """A window of ``size`` one-second segments from ``first`` on (target duration 1 s)."""
    dates = tuple(START + n for n in range(first, first + size)) if dated else ()
    return Window(first, (1.0,) * size, 1.0, ended, dates)


def follow(clock: FakeClock, **rules: object) -> FollowPolicy:
    return FollowPolicy(LiveRules(**rules), clock.monotonic())  # type: ignore[arg-type]


def fetch_all(policy: FollowPolicy, sequences: tuple[int, ...]) -> None:
    for sequence in sequences:
        policy.on_fetched(sequence)


def test_the_first_load_takes_the_whole_window_in_order_four_at_once() -> None:
    clock = FakeClock()
    policy = follow(clock)
    plan = policy.on_playlist(window(100, 6), clock.monotonic())
    assert plan.fetch == (100, 101, 102, 103, 104, 105)
    assert plan.parallel == 4 and plan.is_changed and plan.gap is None
    fetch_all(policy, plan.fetch)
    clock.advance(1.0)
    plan = policy.on_playlist(window(101, 6), clock.monotonic())
    assert plan.fetch == (106,) and plan.parallel == 1  # at the live edge: one at a time
    assert policy.on_fetched(106) == 1.0
    assert policy.recorded_s == 7.0 and policy.fetched == 7 and policy.next_sequence == 107


def test_a_start_near_the_live_edge() -> None:
    clock = FakeClock()
    policy = follow(clock, start_segments=3)
    assert policy.on_playlist(window(100, 6), clock.monotonic()).fetch == (103, 104, 105)


def test_an_outage_inside_the_window_costs_nothing() -> None:
    clock = FakeClock()
    policy = follow(clock)
    fetch_all(policy, policy.on_playlist(window(0, 6), clock.monotonic()).fetch)
    clock.advance(5.0)  # five segments later, the window still holds the next one (6)
    plan = policy.on_playlist(window(5, 6), clock.monotonic())
    assert plan.fetch == (6, 7, 8, 9, 10) and plan.gap is None
    fetch_all(policy, plan.fetch)
    assert policy.gaps == [] and policy.recorded_s == 11.0


def test_an_outage_beyond_the_window_is_one_gap_dated_by_the_program_dates() -> None:
    clock = FakeClock()
    policy = follow(clock)
    fetch_all(policy, policy.on_playlist(window(0, 6), clock.monotonic()).fetch)
    clock.advance(10.0)  # 6..9 left the window meanwhile
    plan = policy.on_playlist(window(10, 6), clock.monotonic())
    assert plan.gap is not None
    assert (plan.gap.first_sequence, plan.gap.segments) == (6, 4)
    assert plan.gap.record() == {"after_s": 6.0, "missing_s": 4.0}
    assert plan.fetch == (10, 11, 12, 13, 14, 15)
    fetch_all(policy, plan.fetch)
    assert policy.gaps == [plan.gap] and policy.missing_s == 4.0


def test_without_dates_a_gap_is_its_count_times_the_mean_segment() -> None:
    clock = FakeClock()
    policy = follow(clock)
    fetch_all(policy, policy.on_playlist(Window(0, (2.0, 4.0), 4.0), clock.monotonic()).fetch)
    plan = policy.on_playlist(Window(5, (3.0,), 4.0), clock.monotonic())
    assert plan.gap is not None and plan.gap.segments == 3
    assert plan.gap.missing_s == pytest.approx(9.0)  # 3 segments of the 3 s mean seen


def test_a_segment_given_up_and_the_window_leaving_make_one_gap() -> None:
    clock = FakeClock()
    policy = follow(clock)
    plan = policy.on_playlist(window(0, 3), clock.monotonic())
    policy.on_fetched(0)
    policy.on_missed(1)
    policy.on_missed(2)
    plan = policy.on_playlist(window(5, 3), clock.monotonic())
    assert plan.gap is not None
    assert policy.gaps == [plan.gap]
    assert (plan.gap.first_sequence, plan.gap.segments, plan.gap.after_s) == (1, 4, 1.0)
    assert plan.gap.missing_s == pytest.approx(4.0)
    policy.on_fetched(5)
    policy.on_missed(6)  # something recorded since: a gap of its own
    assert [(g.first_sequence, g.segments, g.after_s) for g in policy.gaps] == [
        (1, 4, 1.0),
        (6, 1, 2.0),
    ]


def test_reload_a_target_duration_after_a_change_half_of_one_after_none() -> None:
    clock = FakeClock()
    policy = follow(clock)
    window6 = Window(0, (6.0,) * 3, 6.0)
    loaded_at = clock.monotonic()
    plan = policy.on_playlist(window6, loaded_at)
    assert policy.next_load_at(loaded_at, plan.is_changed) == loaded_at + 6.0
    fetch_all(policy, plan.fetch)
    again = policy.on_playlist(window6, loaded_at + 6.0)
    assert again.fetch == () and not again.is_changed
    assert policy.next_load_at(loaded_at + 6.0, again.is_changed) == loaded_at + 9.0


def test_a_stale_copy_behind_us_is_no_change_and_no_reset() -> None:
    clock = FakeClock()
    policy = follow(clock)
    fetch_all(policy, policy.on_playlist(window(10, 6), clock.monotonic()).fetch)
    for stale in (window(8, 6), window(8, 6, dated=False)):
        plan = policy.on_playlist(stale, clock.monotonic())
        assert plan.fetch == () and not plan.is_reset and not plan.is_changed
    assert policy.next_sequence == 16


@pytest.mark.parametrize("dated", [True, False])
def test_a_stream_numbered_anew_is_a_reset_not_a_gap(dated: bool) -> None:
    clock = FakeClock()
    policy = follow(clock)
    fetch_all(policy, policy.on_playlist(window(50, 6, dated=dated), clock.monotonic()).fetch)
    # A new encoder: numbers from 0 again, dates later than ours.
    fresh = Window(0, (1.0,) * 3, 1.0, dates=(START + 90, START + 91, START + 92) if dated else ())
    plan = policy.on_playlist(fresh, clock.monotonic())
    assert plan.is_reset and plan.fetch == (0, 1, 2) and plan.gap is None
    fetch_all(policy, plan.fetch)
    assert policy.gaps == [] and policy.recorded_s == 9.0


def test_a_resumed_recording_goes_on_after_the_last_recorded_number() -> None:
    clock = FakeClock()
    inside = FollowPolicy(LiveRules(), clock.monotonic(), resume_after=102)
    assert inside.on_playlist(window(100, 6), clock.monotonic()).fetch == (103, 104, 105)
    before = FollowPolicy(LiveRules(), clock.monotonic(), resume_after=95)
    plan = before.on_playlist(window(100, 6), clock.monotonic())
    assert plan.gap is not None and (plan.gap.first_sequence, plan.gap.segments) == (96, 4)
    assert plan.fetch == tuple(range(100, 106))
    # The stream's numbers started over since: from the window, no gap.
    renumbered = FollowPolicy(LiveRules(), clock.monotonic(), resume_after=500)
    plan = renumbered.on_playlist(window(100, 6), clock.monotonic())
    assert plan.fetch == tuple(range(100, 106)) and plan.gap is None


def test_endlist_ends_once_its_segments_are_recorded() -> None:
    clock = FakeClock()
    policy = follow(clock)
    plan = policy.on_playlist(window(0, 3, ended=True), clock.monotonic())
    assert policy.end_reason(clock.monotonic()) is None  # still to fetch
    fetch_all(policy, plan.fetch)
    assert policy.end_reason(clock.monotonic()) is EndReason.ENDLIST


def test_offline_for_the_grace_ends_it_a_stalled_playlist_too() -> None:
    clock = FakeClock()
    policy = follow(clock, offline_grace_s=10.0)
    fetch_all(policy, policy.on_playlist(window(0, 3), clock.monotonic()).fetch)
    for _ in range(19):  # the same playlist every half second
        clock.advance(0.5)
        assert policy.on_playlist(window(0, 3), clock.monotonic()).fetch == ()
        assert policy.end_reason(clock.monotonic()) is None
    clock.advance(0.5)
    assert policy.end_reason(clock.monotonic()) is EndReason.OFFLINE


def test_failures_back_off_up_to_the_target_and_end_after_the_grace() -> None:
    clock = FakeClock()
    policy = follow(clock, offline_grace_s=30.0, retry_base_s=0.5)
    fetch_all(policy, policy.on_playlist(Window(0, (4.0,) * 3, 4.0), clock.monotonic()).fetch)
    rng = random.Random(3)
    delays = []
    while True:
        decision = policy.on_failure(Stalled("no answer"), clock.monotonic(), rng)
        if decision.action is Action.END:
            break
        assert decision.action is Action.RETRY
        delays.append(decision.delay_s)
        clock.advance(decision.delay_s)
    assert decision.reason is EndReason.OFFLINE
    assert clock.monotonic() == pytest.approx(1000.0 + 30.0)  # the last wait ends at the grace
    assert 0.25 <= delays[0] < 0.5 and 0.5 <= delays[1] < 1.0  # equal jitter, doubling
    assert max(delays) <= 4.0  # never longer than a target duration: the window keeps
    assert len(delays) >= 30 / 4.0
    # A load that works again starts the backoff over.
    policy.on_playlist(Window(3, (4.0,), 4.0), clock.monotonic())
    assert policy.on_failure(Stalled("again"), clock.monotonic(), rng).delay_s < 0.5


def test_what_a_reconnect_cannot_fix_fails_and_a_404_is_retried() -> None:
    clock = FakeClock()
    policy = follow(clock)
    policy.on_playlist(window(0, 0), clock.monotonic())
    for final in (Forbidden("403"), Gone("410"), BotCheck("wall"), LeaseLost(), ValueError("?")):
        assert policy.on_failure(final, clock.monotonic()).action is Action.FAIL
    assert policy.on_failure(NotFound("404"), clock.monotonic()).action is Action.RETRY


def test_retry_after_is_honoured_up_to_the_window() -> None:
    clock = FakeClock()
    policy = follow(clock)
    policy.on_playlist(window(0, 6), clock.monotonic())
    fetch_all(policy, tuple(range(6)))
    asked = policy.on_failure(Transient("busy", retry_after_s=3.0), clock.monotonic())
    assert asked.delay_s == 3.0
    capped = policy.on_failure(Transient("busy", retry_after_s=600.0), clock.monotonic())
    assert capped.delay_s == 6.0  # the window: waiting longer would lose segments


def test_a_segment_is_retried_then_given_up() -> None:
    clock = FakeClock()
    policy = follow(clock, segment_tries=3)
    policy.on_playlist(Window(0, (6.0,), 6.0), clock.monotonic())
    rng = random.Random(1)
    first = policy.on_segment_failure(Transient("reset"), 1, rng)
    assert first.action is Action.RETRY and 0.25 <= first.delay_s < 0.5
    assert policy.on_segment_failure(NotFound("gone"), 2, rng).action is Action.RETRY
    assert policy.on_segment_failure(Transient("reset"), 3, rng).action is Action.SKIP
    assert policy.on_segment_failure(Forbidden("expired"), 1, rng).action is Action.FAIL


def test_the_maximum_duration_stops_the_claims_and_ends_it() -> None:
    clock = FakeClock()
    policy = follow(clock, max_duration_s=4.0)
    plan = policy.on_playlist(window(0, 6), clock.monotonic())
    assert plan.fetch == (0, 1, 2, 3)
    fetch_all(policy, plan.fetch)
    assert policy.end_reason(clock.monotonic()) is EndReason.MAX_DURATION
    assert policy.on_playlist(window(1, 6), clock.monotonic()).fetch == ()


def test_the_order_of_resolution_is_enforced() -> None:
    clock = FakeClock()
    policy = follow(clock)
    policy.on_playlist(window(0, 3), clock.monotonic())
    with pytest.raises(ValueError, match="oldest"):
        policy.on_fetched(1)
    with pytest.raises(RuntimeError, match="claimed"):
        policy.on_playlist(window(1, 3), clock.monotonic())


@pytest.mark.parametrize(
    "rules",
    [
        {"max_parallel": 0},
        {"segment_tries": 0},
        {"offline_grace_s": -1.0},
        {"retry_base_s": 0.0},
        {"start_segments": 0},
    ],
)
def test_nonsense_rules_are_refused(rules: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LiveRules(**rules)  # type: ignore[arg-type]
