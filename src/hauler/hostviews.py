"""The host budgets as people and scripts see them: what ``hauler host … --json`` prints and
the HTTP API will answer (numbers: seconds, requests a second), the text of ``hauler host
list``'s cells, and the lines ``hauler explain`` adds for a job whose host is cooling down.

Nothing here holds a secret: hosts are budget keys, proxies are named by their labels
(``net.proxy_label``), never by their URLs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hauler.errors import ErrorClass
from hauler.hosts import HostBudget, HostLimit, governing_host
from hauler.models import Job, JobState
from hauler.redact import printable

HOST_COLUMNS = (
    "host",
    "rate limit",
    "rate now",
    "burst",
    "connections",
    "per proxy",
    "cooldown",
    "proxies cooling",
    "requests",
    "throttled",
)
WHY_COOLING = "(a 429/503 with Retry-After)"
_RATE_UNITS = ((1, "s"), (60, "min"), (3600, "h"))


@dataclass(frozen=True, slots=True)
class HostListing:
    """The hosts the store holds, and when they were read (epoch seconds): what "cooldown
    left" is measured from."""

    budgets: tuple[HostBudget, ...]
    at: float

    def find(self, host: str) -> HostBudget | None:
        """The budget keyed ``host``, if the store holds one."""
        return next((budget for budget in self.budgets if budget.host == host), None)


def own_cooldown_left_s(budget: HostBudget, now: float) -> float:
    """How long the host itself (direct requests, every proxy) still cools; 0 when it does not."""
    return 0.0 if budget.cooldown_until is None else max(0.0, budget.cooldown_until - now)


def proxy_cooldowns_left(budget: HostBudget, now: float) -> dict[str, float]:
    """The proxies cooling on the host now, by label, and the seconds each has left."""
    return {label: until - now for label, until in budget.proxy_cooldowns.items() if until > now}


def host_record(budget: HostBudget, now: float) -> dict[str, Any]:
    """One host as a JSON object: its limit, the rate in force, connections in use, the
    cooldowns left (the host's and its proxies'), requests and throttled answers counted."""
    proxies = proxy_cooldowns_left(budget, now)
    return {
        "host": budget.host,
        "has_limit": budget.limit is not None,
        **_limit_fields(budget.limit),
        "rate_per_s": budget.rate_per_s,
        "rate_changed_at": budget.rate_changed_at,
        "connections_in_use": budget.in_use,
        "cooldown_until": budget.cooldown_until,
        "cooldown_left_s": round(own_cooldown_left_s(budget, now), 3),
        "proxies_cooling": len(proxies),
        "proxy_cooldown_left_s": round(max([0.0, *proxies.values()]), 3),
        "proxy_cooldowns": {label: round(left, 3) for label, left in sorted(proxies.items())},
        "requests": budget.requests,
        "throttled": budget.throttled,
    }


def _limit_fields(limit: HostLimit | None) -> dict[str, Any]:
    """The limit's numbers, each None when not set (all of them for a host without a limit)."""
    if limit is None:
        names = ("rate_limit_per_s", "burst", "connections", "proxy_rate_per_s")
        return dict.fromkeys((*names, "proxy_connections"))
    return {
        "rate_limit_per_s": limit.rate_per_s,
        "burst": None if limit.rate_per_s is None else limit.burst,
        "connections": limit.connections,
        "proxy_rate_per_s": limit.proxy_rate_per_s,
        "proxy_connections": limit.proxy_connections,
    }


def listing_record(listing: HostListing) -> list[dict[str, Any]]:
    """``hauler host list --json``: one object per host, sorted by host."""
    return [host_record(budget, listing.at) for budget in listing.budgets]


def rate_text(per_s: float | None) -> str:
    """``5/s``, ``3.33/s``, ``0.5/s``, ``30/min``, ``100/h``: a second from 1/s up, else in the
    first unit it reads in exactly, at most two decimals; ``-`` for no rate."""
    if per_s is None:
        return "-"
    if per_s >= 1:
        return f"{number_text(per_s)}/s"
    for per_unit, unit in _RATE_UNITS:
        count = per_s * per_unit
        if abs(count * 100 - round(count * 100)) < 1e-6 * max(1.0, count):
            return f"{number_text(count)}/{unit}"
    per_unit, unit = _RATE_UNITS[1] if per_s * 60 >= 1 else _RATE_UNITS[2]
    return f"{number_text(per_s * per_unit)}/{unit}"


def number_text(value: float) -> str:
    """``5``, ``2.5``, ``3.33``: at most two decimals, none trailing."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def left_text(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: a time left, in whole seconds rounded up."""
    left = math.ceil(seconds)
    if left < 60:
        return f"{left} s"
    if left < 3600:
        return f"{left // 60} min {left % 60} s"
    return f"{left // 3600} h {left % 3600 // 60} min"


def limit_text(limit: HostLimit) -> str:
    """``5/s (burst 10), 8 connections; per proxy 1/s, 2 connections``: what is set."""
    own = _rate_and_connections(limit.rate_per_s, limit.connections, limit.burst)
    per_proxy = _rate_and_connections(limit.proxy_rate_per_s, limit.proxy_connections, None)
    parts = [own] if own else []
    parts += [f"per proxy {per_proxy}"] if per_proxy else []
    return "; ".join(parts)


def _rate_and_connections(rate: float | None, connections: int | None, burst: float | None) -> str:
    parts = []
    if rate is not None:
        parts.append(rate_text(rate) + (f" (burst {number_text(burst)})" if burst else ""))
    if connections is not None:
        parts.append(f"{connections} connection{'s' if connections != 1 else ''}")
    return ", ".join(parts)


def host_row(budget: HostBudget, now: float) -> tuple[str, ...]:
    """The cells of ``hauler host list``'s row for ``budget`` (``HOST_COLUMNS``)."""
    limits = _limit_fields(budget.limit)
    has_rate = limits["rate_limit_per_s"] is not None
    return (
        budget.host,
        rate_text(limits["rate_limit_per_s"]),
        rate_text(budget.rate_per_s) if has_rate else "-",
        number_text(limits["burst"]) if has_rate else "-",
        _connections_cell(budget),
        _per_proxy_cell(budget.limit),
        _left_cell(own_cooldown_left_s(budget, now)),
        _proxies_cooling_cell(budget, now),
        str(budget.requests),
        str(budget.throttled),
    )


def _connections_cell(budget: HostBudget) -> str:
    if budget.limit is None:
        return "-"
    return f"{budget.in_use}/{budget.limit.connections or '-'}"


def _per_proxy_cell(limit: HostLimit | None) -> str:
    if limit is None:
        return "-"
    return _rate_and_connections(limit.proxy_rate_per_s, limit.proxy_connections, None) or "-"


def _left_cell(seconds: float) -> str:
    return left_text(seconds) if seconds > 0 else "-"


def _proxies_cooling_cell(budget: HostBudget, now: float) -> str:
    lefts = proxy_cooldowns_left(budget, now).values()
    return f"{len(lefts)} (longest {left_text(max(lefts))})" if lefts else "-"


def host_reasons(job: Job, budgets: Sequence[HostBudget], now: float) -> list[str]:
    """What ``hauler explain`` adds about the job's host: that it (the host, or the parent
    domain whose limit governs it) or proxies on it are cooling down, and the limit in force.
    Only while one cools, or when the job's last error was ``throttled``; nothing for a job
    that is done."""
    host = job.spec.host  # as the request gate keys it (``pools.hostgate``)
    if job.state is JobState.DONE or not host:
        return []
    limited = {budget.host: budget for budget in budgets if budget.limit is not None}
    key = governing_host(host, limited) or host
    budget = next((b for b in budgets if b.host == key), None)
    lines = [] if budget is None else cooling_lines(budget, now)
    is_throttled = job.error is not None and job.error.error_class == ErrorClass.THROTTLED
    if not lines and not is_throttled:
        return []
    if budget is not None and budget.limit is not None:
        lines.append(f"{key}'s limit for the fleet: {in_force_text(budget)}")
    else:
        lines.append(f"no limit paces {key}: `hauler host limit {key} --rate 1/s` sets one")
    return [printable(line) for line in lines]


def cooling_lines(budget: HostBudget, now: float) -> list[str]:
    """``example.com is cooling down for 42 s (…)``, and how many proxies on it cool."""
    lines = []
    own_s = own_cooldown_left_s(budget, now)
    if own_s > 0:
        lines.append(f"{budget.host} is cooling down for {left_text(own_s)} {WHY_COOLING}")
    proxies = proxy_cooldowns_left(budget, now)
    if len(proxies) == 1:
        [(label, left_s)] = proxies.items()
        left = left_text(left_s)
        lines.append(f"proxy {label} on {budget.host} is cooling down for {left} {WHY_COOLING}")
    elif proxies:
        longest = left_text(max(proxies.values()))
        head = f"{len(proxies)} proxies on {budget.host} are cooling down"
        lines.append(f"{head} {WHY_COOLING}, the longest for {longest}")
    return lines


def in_force_text(budget: HostBudget) -> str:
    """The host's limit, and its rate now when throttling has slowed it; ``no limit``."""
    if budget.limit is None:
        return "no limit"
    text = limit_text(budget.limit)
    if budget.limit.rate_per_s is not None and budget.rate_per_s != budget.limit.rate_per_s:
        text += f"; rate now {rate_text(budget.rate_per_s)} (slowed after throttling)"
    return text
