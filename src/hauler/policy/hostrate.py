"""Per-host budget decisions, pure (the store keeps the state, shared by the fleet; times are
passed in): a token bucket for the request rate, the cooldown a 429/503 with Retry-After puts a
host in, and the AIMD adaptation of the rate (halve on throttling, grow by 10 % per minute of
success, between a floor and the configured limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

# Growth: +10 % once a minute of success (additive-ish increase; TCP grows once per round trip).
GROWTH = 1.10
GROWTH_EVERY_S = 60.0
# Throttled answers that come within this of the last change are the same overload answering
# for the requests already in flight: one halving, not one per answer.
SETTLE_S = 1.0
# The slowest an adapted rate goes: one request every 10 s still learns when the host is back.
FLOOR_PER_S = 0.1


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: ``rate_per_s`` tokens a second up to ``burst``, ``tokens`` as of
    ``updated_at``. ``tokens`` goes below zero when requests are promised tokens to come."""

    rate_per_s: float
    burst: float
    tokens: float
    updated_at: float

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0 or not self.burst >= 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")

    @classmethod
    def full(cls, rate_per_s: float, burst: float, now: float) -> Bucket:
        """A bucket with every token of its burst."""
        return cls(rate_per_s, burst, burst, now)

    def refilled(self, now: float) -> Bucket:
        """The bucket at ``now`` (time never runs back: an earlier ``now`` refills nothing)."""
        elapsed = max(0.0, now - self.updated_at)
        tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        return replace(self, tokens=tokens, updated_at=max(now, self.updated_at))

    def take(self, now: float) -> tuple[Bucket, float]:
        """Take one token: the bucket after it and how long to wait before sending.

        The token is taken even when it is still to come (the bucket goes into debt), so a
        waiting request keeps its place: it sleeps ``wait_s`` and sends, with no second take,
        and the requests behind it queue after it at the rate."""
        bucket = self.refilled(now)
        tokens = bucket.tokens - 1
        wait_s = 0.0 if tokens >= 0 else -tokens / self.rate_per_s
        return replace(bucket, tokens=tokens), wait_s

    def with_rate(self, rate_per_s: float, now: float) -> Bucket:
        """The bucket refilled at its old rate until ``now``, at ``rate_per_s`` from then on."""
        return replace(self.refilled(now), rate_per_s=rate_per_s)


def cooldown_until(
    now: float, retry_after_s: float | None, default_s: float, *, max_s: float | None = None
) -> float:
    """Until when a host (or a proxy on it) is left alone after a 429/503: ``Retry-After`` when
    the answer had a usable one, else ``default_s``; never longer than ``max_s`` when given."""
    delay = default_s
    if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s >= 0:
        delay = retry_after_s
    if max_s is not None:
        delay = min(delay, max_s)
    return now + max(0.0, delay)


class HostEvent(StrEnum):
    """What a request to a host told the rate adaptation."""

    SUCCESS = "success"
    THROTTLED = "throttled"  # 429 or 503 from the host


@dataclass(frozen=True, slots=True)
class Adapted:
    """The outcome of ``adapt``: the rate now and when it last changed."""

    rate_per_s: float
    changed_at: float

    def is_change_from(self, rate_per_s: float) -> bool:
        """True when the rate differs from ``rate_per_s``."""
        return self.rate_per_s != rate_per_s


def adapt(
    rate: float,
    limit: float,
    event: HostEvent,
    now: float,
    last_change_at: float,
    *,
    floor: float = FLOOR_PER_S,
) -> Adapted:
    """AIMD: a throttled answer halves ``rate`` (once per ``SETTLE_S``), a success grows it by
    10 % when a minute passed since the last change; the result stays within
    [min(floor, limit), limit]."""
    low = min(floor, limit)
    if event is HostEvent.THROTTLED:
        if now - last_change_at < SETTLE_S:
            return Adapted(max(low, min(rate, limit)), last_change_at)
        return Adapted(max(low, min(limit, rate / 2)), now)
    if now - last_change_at < GROWTH_EVERY_S or rate >= limit:
        return Adapted(max(low, min(rate, limit)), last_change_at)
    return Adapted(max(low, min(limit, rate * GROWTH)), now)
