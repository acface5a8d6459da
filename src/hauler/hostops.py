"""The host budget operations the CLI composes and the HTTP API will call: set (replace), list
and remove a host's fleet-wide limit, over the store's ``HostBudgets`` role.

What the user gives is checked here, before the store is opened: ``BadLimit`` says which option
to fix. Each operation returns plain records (``hauler.hostviews``); printing is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

from hauler.clock import Clock, SystemClock
from hauler.hosts import HostBudget, HostLimit, host_key
from hauler.hostviews import HostListing
from hauler.store.base import HostBudgets
from hauler.units import parse_request_rate

_SYSTEM_CLOCK = SystemClock()


class BadLimit(ValueError):
    """A host or a limit the user must fix; ``message`` is one line naming the option."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class LimitOptions:
    """``hauler host limit``'s options as typed (None: not given)."""

    rate: str | None = None
    burst: str | None = None
    connections: str | None = None
    proxy_rate: str | None = None
    proxy_connections: str | None = None


def checked_host(host: str) -> str:
    """``host`` as budgets are keyed (``hosts.host_key``); ``BadLimit`` when it is not one."""
    try:
        return host_key(host)
    except ValueError as exc:
        raise BadLimit(str(exc)) from None


def host_limit(host: str, options: LimitOptions) -> HostLimit:
    """The limit ``options`` give ``host``: at least one rate or connection limit, a burst
    only with ``--rate``. Raises ``BadLimit``."""
    if options.burst is not None and options.rate is None:
        raise BadLimit("--burst needs --rate (it is the rate's bucket)")
    limits = (options.rate, options.connections, options.proxy_rate, options.proxy_connections)
    if all(value is None for value in limits):
        raise BadLimit(
            "give at least one limit: --rate, --connections, --proxy-rate or --proxy-connections"
        )
    return HostLimit(
        host=checked_host(host),
        rate_per_s=_rate("--rate", options.rate),
        burst=_burst(options.burst),
        connections=_count("--connections", options.connections),
        proxy_rate_per_s=_rate("--proxy-rate", options.proxy_rate),
        proxy_connections=_count("--proxy-connections", options.proxy_connections),
    )


def _rate(flag: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_request_rate(text)
    except ValueError as exc:
        raise BadLimit(f"{flag}: {exc}") from None


def _count(flag: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise BadLimit(f"{flag}: {text!r} is not a whole number of connections of at least 1")
    return int(text)


def _burst(text: str | None) -> float:
    if text is None:
        return 1.0
    try:
        burst = float(text)
    except ValueError:
        burst = 0.0
    if not 1 <= burst < float("inf"):
        raise BadLimit(f"--burst: {text!r} is not a number of requests of at least 1")
    return burst


async def set_limit(
    budgets: HostBudgets, limit: HostLimit, clock: Clock = _SYSTEM_CLOCK
) -> HostBudget:
    """Store ``limit`` (replacing the host's), and the host's budget now in force."""
    await budgets.set_host_limit(limit)
    listing = await list_hosts(budgets, clock)
    found = listing.find(limit.host)
    if found is not None:
        return found
    # Removed again by someone else between the two calls: what was set is still the answer.
    return HostBudget(limit.host, limit, limit.rate_per_s, listing.at, None)


async def list_hosts(budgets: HostBudgets, clock: Clock = _SYSTEM_CLOCK) -> HostListing:
    """Every host with a limit or a cooldown not yet over, and when they were read."""
    return HostListing(tuple(await budgets.host_budgets()), clock.now())


async def remove(budgets: HostBudgets, host: str) -> bool:
    """Forget ``host``'s limit, buckets, slots, cooldowns and counters; False when the store
    held nothing for it."""
    return await budgets.remove_host_limit(checked_host(host))
