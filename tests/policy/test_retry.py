"""The retry policy: equal jitter within [c/2, c), capped; Retry-After a floor; fatal fails."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from hauler.errors import NotFound, Transient
from hauler.policy.retry import Action, RetryPolicy


@given(attempt=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_backoff_is_equal_jitter_within_half_to_the_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=60.0)
    ceiling = min(60.0, 0.5 * 2.0 ** (attempt - 1))
    delay = policy.backoff_s(attempt, random.Random(seed))
    assert ceiling / 2 <= delay < ceiling


def test_backoff_spreads_over_the_upper_half() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=8.0)
    rng = random.Random(7)
    delays = [policy.backoff_s(4, rng) for _ in range(2000)]
    assert min(delays) < 4.1 and max(delays) > 7.9  # the whole of [4, 8) is used


def test_no_jitter_is_the_ceiling() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=5.0, jitter=False)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_retry_after_is_a_floor_and_fatal_fails() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=5.0)
    decision = policy.decide(Transient("busy", retry_after_s=30.0), 1, 3)
    assert (decision.action, decision.delay_s) == (Action.RETRY, 30.0)
    assert policy.decide(NotFound("gone"), 1, 3).action is Action.FAIL
    assert policy.decide(Transient("busy"), 3, 3).action is Action.FAIL
