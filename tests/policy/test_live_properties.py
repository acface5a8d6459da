"""Properties of the live follower's decisions over random streams, windows, outages and
failed segments: each segment is fetched at most once and in order; the fetched segments and
the gaps together cover every number from the start to the last one claimed, exactly once; a
gap's after_s is the media recorded before it."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from hauler.policy.live import FollowPolicy, LiveRules, Window

START = 1_800_000_000.0


@dataclass
class Stream:
    """A live stream's segments so far (durations, start dates) and its window size."""

    window_size: int
    is_dated: bool
    durations: list[float] = field(default_factory=list)

    def produce(self, duration: float) -> None:
        self.durations.append(duration)

    def window(self) -> Window:
        """The last ``window_size`` segments, their dates given when the stream is dated."""
        first = max(0, len(self.durations) - self.window_size)
        durations = tuple(self.durations[first:])
        dates = tuple(START + sum(self.durations[:n]) for n in range(first, len(self.durations)))
        target = max(self.durations, default=1.0)
        return Window(first, durations, target, False, dates if self.is_dated else ())


# One step: the stream adds 0-3 segments; the follower looks or not (an outage); of what it
# claims, some segments fail for good (their numbers are bits of the mask).
steps = st.lists(
    st.tuples(
        st.lists(st.floats(0.5, 2.0), max_size=3),
        st.booleans(),
        st.integers(0, 2**16),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    window_size=st.integers(1, 8),
    is_dated=st.booleans(),
    start_segments=st.none() | st.integers(1, 8),
    script=steps,
)
def test_every_number_is_fetched_once_or_in_a_gap(
    window_size: int,
    is_dated: bool,
    start_segments: int | None,
    script: list[tuple[list[float], bool, int]],
) -> None:
    stream = Stream(window_size, is_dated)
    policy = FollowPolicy(LiveRules(start_segments=start_segments), 0.0)
    fetched: list[int] = []
    first_wanted: int | None = None
    for now, (produced, looks, mask) in enumerate(script):
        for duration in produced:
            stream.produce(duration)
        if not looks:
            continue
        window = stream.window()
        plan = policy.on_playlist(window, float(now))
        if first_wanted is None and policy.next_sequence is not None:
            first_wanted = plan.fetch[0] if plan.fetch else policy.next_sequence
        assert not plan.is_reset  # numbers only grow here
        assert 1 <= plan.parallel <= 4
        for index, sequence in enumerate(plan.fetch):
            if mask >> (index % 16) & 1:
                policy.on_missed(sequence)
            else:
                policy.on_fetched(sequence)
                fetched.append(sequence)
    # At most once, in order.
    assert fetched == sorted(set(fetched))
    if first_wanted is None or policy.next_sequence is None:
        return
    # Fetched + gaps cover [first wanted, next) exactly once.
    covered = list(fetched)
    for gap in policy.gaps:
        covered.extend(range(gap.first_sequence, gap.first_sequence + gap.segments))
    assert sorted(covered) == list(range(first_wanted, policy.next_sequence))
    # Each gap comes after exactly the media recorded before its first number.
    durations = stream.durations
    for gap in policy.gaps:
        before = sum(durations[n] for n in fetched if n < gap.first_sequence)
        assert abs(gap.after_s - before) < 1e-6
        assert gap.missing_s > 0
    assert abs(policy.recorded_s - sum(durations[n] for n in fetched)) < 1e-6


@settings(max_examples=200, deadline=None)
@given(
    window_size=st.integers(1, 8),
    is_dated=st.booleans(),
    script=st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=40),
)
def test_with_one_second_segments_a_gap_is_as_long_as_what_it_lost(
    window_size: int, is_dated: bool, script: list[tuple[int, bool]]
) -> None:
    stream = Stream(window_size, is_dated)
    policy = FollowPolicy(LiveRules(), 0.0)
    for now, (produced, looks) in enumerate(script):
        for _ in range(produced):
            stream.produce(1.0)
        if looks:
            window = stream.window()
            plan = policy.on_playlist(window, float(now))
            for sequence in plan.fetch:
                policy.on_fetched(sequence)
    for gap in policy.gaps:
        assert abs(gap.missing_s - gap.segments) < 1e-6
    assert abs(policy.recorded_s + policy.missing_s - policy.covered_s) < 1e-6
