"""Retry decisions: exponential backoff with equal jitter, capped, honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from hauler.errors import Bannable, Fatal, HaulerError, LeaseLost, RestartTransfer, Transient


class Action(StrEnum):
    """What to do with a failed attempt."""

    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``RetryPolicy.decide``: an action and, for a retry, the delay."""

    action: Action
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with equal jitter: delay in [c/2, c), c = min(cap, base * 2**n).

    Equal jitter, not AWS's full jitter ([0, c)): full jitter spreads retries the most, but one
    draw in ten comes back within a tenth of the ceiling, so a failing origin sees retries at
    once that the backoff was meant to hold off; the lower half of the range is kept as a
    floor and the upper half still spreads a fleet's retries over c/2. ``jitter=False`` gives c.

    A ``retry_after_s`` from the origin is a floor: we never come back sooner than asked.
    """

    base_s: float = 1.0
    cap_s: float = 300.0
    jitter: bool = True

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry number ``attempt`` (1 = first retry)."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(0, attempt - 1))
        if not self.jitter:
            return ceiling
        # Equal jitter: half the ceiling for sure, the other half at random.
        return ceiling / 2 + (rng or random).random() * ceiling / 2

    def decide(
        self,
        error: BaseException,
        attempts: int,
        max_attempts: int,
        rng: random.Random | None = None,
    ) -> Decision:
        """Decide after ``attempts`` failed attempts (counting this one) out of ``max_attempts``."""
        if isinstance(error, Fatal | LeaseLost) or attempts >= max_attempts:
            return Decision(Action.FAIL)
        if isinstance(error, Transient | Bannable | RestartTransfer):
            delay = self.backoff_s(attempts, rng)
            if isinstance(error, Transient) and error.retry_after_s is not None:
                delay = max(delay, error.retry_after_s)
            return Decision(Action.RETRY, delay)
        if isinstance(error, HaulerError):
            return Decision(Action.FAIL)
        # Anything unforeseen is treated as transient: losing a job is worse than a retry.
        return Decision(Action.RETRY, self.backoff_s(attempts, rng))
