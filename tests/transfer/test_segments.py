"""Property tests for the pure segment planner: plans always cover [0, size) exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hauler.transfer.segments import (
    Segment,
    SegmentPlan,
    is_valid_cover,
    should_take_over,
)


def covered(plan: SegmentPlan) -> list[int]:
    """How many segments cover each byte (sizes are small in these tests)."""
    counts = [0] * plan.size
    for segment in plan.segments:
        for offset in range(segment.start, segment.end):
            counts[offset] += 1
    return counts


@given(
    size=st.integers(1, 5000),
    connections=st.integers(1, 64),
    min_split=st.integers(1, 2000),
)
def test_initial_plan_covers_exactly_once(size: int, connections: int, min_split: int) -> None:
    plan = SegmentPlan.initial(size, connections, min_split)
    assert covered(plan) == [1] * size
    assert is_valid_cover(plan.segments, size)
    assert len(plan.segments) <= connections
    if len(plan.segments) > 1:
        assert min(s.end - s.start for s in plan.segments) >= min_split


operations = st.lists(
    st.tuples(
        st.sampled_from(["advance", "claim", "steal", "take_over", "release"]),
        st.integers(0, 10_000),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(
    size=st.integers(1, 3000),
    connections=st.integers(1, 16),
    min_split=st.integers(1, 500),
    ops=operations,
)
def test_any_sequence_of_steals_and_takeovers_keeps_an_exact_cover(
    size: int, connections: int, min_split: int, ops: list[tuple[str, int]]
) -> None:
    plan = SegmentPlan.initial(size, connections, min_split)
    for op, number in ops:
        active = [s for s in plan.segments if s.is_active and s.remaining > 0]
        if op == "claim" and (idle := plan.next_idle()) is not None:
            idle.is_active = True
        elif op == "advance" and active:
            segment = active[number % len(active)]
            segment.pos += min(segment.remaining, number % 97 + 1)
        elif op == "steal" and (tail := plan.steal()) is not None:
            assert tail.remaining >= min_split
            tail.is_active = True
        elif op == "take_over" and active:
            tail = plan.take_over(active[number % len(active)])
            tail.is_active = True
        elif op == "release" and active:
            active[number % len(active)].is_active = False
        assert covered(plan) == [1] * size
        assert all(s.start <= s.pos <= s.end for s in plan.segments)
        plan.compact()
        assert is_valid_cover(plan.segments, size)
    done_before = plan.done_bytes
    assert done_before == sum(s.pos - s.start for s in plan.segments)


def test_steal_takes_half_of_the_largest_active_range() -> None:
    plan = SegmentPlan(100, [Segment(0, 40, 10, True), Segment(40, 100, 50, True)], 10)
    tail = plan.steal()
    assert tail is not None
    assert (tail.start, tail.end) == (75, 100)
    assert plan.segments[1].end == 75


def test_steal_refuses_below_twice_the_min_split() -> None:
    plan = SegmentPlan(100, [Segment(0, 100, 81, True)], 10)
    assert plan.steal() is None


def test_takeover_only_when_much_faster() -> None:
    assert should_take_over(10 * 1024 * 1024, victim_bps=10_000, thief_bps=10_000_000)
    assert not should_take_over(10 * 1024 * 1024, victim_bps=4_000_000, thief_bps=4_000_000)
    assert not should_take_over(0, victim_bps=1, thief_bps=10_000_000)
