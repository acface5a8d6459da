"""The stall budget: a file that only trickles fails after N stall reconnects."""

from __future__ import annotations

from hauler.policy.progress import StallBudget


def test_a_trickle_gives_up_at_the_nth_stall() -> None:
    budget = StallBudget(max_stalls=5, lowest_speed_bps=1024, started_at=100.0)
    # One stall every 15 s, 10 bytes each time: far below 1 KiB/s.
    verdicts = [budget.is_spent(100.0 + 15 * n, 10 * n) for n in range(1, 6)]
    assert verdicts == [False, False, False, False, True]


def test_a_file_that_moves_between_stalls_keeps_going() -> None:
    budget = StallBudget(max_stalls=3, lowest_speed_bps=1000, started_at=0.0)
    # 2,000 bytes per 1 s between stalls: twice the lowest speed on average.
    assert not any(budget.is_spent(float(n), 2000 * n) for n in range(1, 50))


def test_the_average_is_over_the_last_stalls_only() -> None:
    budget = StallBudget(max_stalls=2, lowest_speed_bps=100, started_at=0.0)
    assert not budget.is_spent(10.0, 100_000)  # fast at first
    assert not budget.is_spent(20.0, 100_000 + 50)  # window [0, 20]: fast on average
    # The fast start has left the window [10, 30]: 100 bytes in 20 s (5 B/s) < 100 B/s.
    assert budget.is_spent(30.0, 100_000 + 100)


def test_exactly_the_lowest_speed_is_enough() -> None:
    budget = StallBudget(max_stalls=1, lowest_speed_bps=10, started_at=0.0)
    assert not budget.is_spent(10.0, 100)
    assert budget.is_spent(20.0, 199)


def test_zero_never_gives_up() -> None:
    budget = StallBudget(max_stalls=0, lowest_speed_bps=1024, started_at=0.0)
    assert not any(budget.is_spent(float(n), 0) for n in range(1, 100))
