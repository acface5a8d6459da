"""Byte-rate token buckets (overall and per file), awaited once per block read."""

from __future__ import annotations

from hauler.clock import Clock, SystemClock


class TokenBucket:
    """Allows ``rate_bps`` bytes per second on average, with a burst of about ``burst_s``
    after a pause.

    Consumers take bytes after reading them and go into debt; the debt is paid by sleeping,
    which keeps the average rate without splitting reads. A new bucket starts empty: a full one
    would let the first ``burst_s`` of bytes through unpaced, and a 3 s download limited to
    10 MiB/s would average 10.8.
    """

    def __init__(self, rate_bps: int, clock: Clock | None = None, burst_s: float = 0.25) -> None:
        if rate_bps <= 0:
            raise ValueError("rate_bps must be positive")
        self.rate_bps = rate_bps
        self._clock = clock or SystemClock()
        self._capacity = max(1.0, rate_bps * burst_s)
        self._tokens = 0.0
        self._stamp = self._clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.rate_bps)
        self._stamp = now

    def delay_for(self, nbytes: int) -> float:
        """Take ``nbytes`` and return how long to sleep to stay within the rate."""
        self._refill()
        self._tokens -= nbytes
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_bps

    async def consume(self, nbytes: int) -> None:
        """Take ``nbytes``, sleeping as long as the rate requires."""
        delay = self.delay_for(nbytes)
        if delay > 0:
            await self._clock.sleep(delay)


def delay_all(buckets: tuple[TokenBucket, ...], nbytes: int) -> float:
    """Take ``nbytes`` from every bucket; the sleep the slowest of them needs."""
    return max(bucket.delay_for(nbytes) for bucket in buckets)
