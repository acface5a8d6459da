"""Per-host budgets the fleet shares through the store: what a user sets for a host (``HostLimit``),
what the store says of it now (``HostBudget``), and its answer to one request asking to go
(``Admission``). Plain data, no I/O; the decisions are in ``hauler.policy.hostrate``.

A limit on ``example.com`` governs that host and its subdomains (``cdn.example.com`` shares its
budget); the most specific limit wins. A host without a limit is free, except while a 429/503
with Retry-After has put it (or one proxy on it) in cooldown.

A proxy on a host is named by a label (``net.proxy_label``: its host and port and a short hash of
the whole URL), never by its URL: the store and the listings hold no proxy credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$|^\[[0-9a-f:.]+\]$")


def host_key(host: str) -> str:
    """``host`` as budgets are keyed: lower case, without a trailing dot. ``ValueError`` for
    what is not a host name or an address (a URL, a port, a path, spaces)."""
    key = host.strip().lower().rstrip(".")
    if not key or not _HOST.match(key):
        raise ValueError(f"not a host name: {host!r} (give a name like example.com, no URL)")
    return key


def governing_host(host: str, limited: Mapping[str, object]) -> str | None:
    """The most specific key of ``limited`` that is ``host`` or a parent domain of it."""
    key = host.lower().rstrip(".")
    while True:
        if key in limited:
            return key
        _, dot, rest = key.partition(".")
        if not dot or not rest:
            return None
        key = rest


@dataclass(frozen=True, slots=True)
class HostLimit:
    """A host's budget for the whole fleet: requests a second (a token bucket of ``burst``)
    and connections open at once, over every worker; ``proxy_*`` the same for each proxy on
    the host. None: no limit of that kind."""

    host: str
    rate_per_s: float | None = None
    burst: float = 1.0
    connections: int | None = None
    proxy_rate_per_s: float | None = None
    proxy_connections: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", host_key(self.host))
        for rate in (self.rate_per_s, self.proxy_rate_per_s):
            if rate is not None and not rate > 0:
                raise ValueError("a rate must be positive")
        for count in (self.connections, self.proxy_connections):
            if count is not None and count < 1:
                raise ValueError("a connection limit must be at least 1")
        if not self.burst >= 1:
            raise ValueError("a burst must be at least 1")


@dataclass(frozen=True, slots=True)
class HostBudget:
    """A host as the store holds it now.

    ``limit`` is None for a host known only by a cooldown. ``rate_per_s`` is the rate in force
    (the limit's, halved on throttling and grown back by ``adapt``), changed last at
    ``rate_changed_at``. ``cooldown_until`` (the host's) and ``proxy_cooldowns`` (label ->
    until) are as stored, over or not; ``in_use`` counts the requests admitted and not yet
    left whose slot has not expired. ``requests`` and ``throttled`` count admissions and
    429/503 answers since the limit was set."""

    host: str
    limit: HostLimit | None
    rate_per_s: float | None
    rate_changed_at: float
    cooldown_until: float | None
    proxy_cooldowns: Mapping[str, float] = field(default_factory=dict)
    in_use: int = 0
    requests: int = 0
    throttled: int = 0

    def cooldown_left_s(self, now: float) -> float:
        """How long until neither the host nor any of its proxies is cooling (0: none is)."""
        ends = [*self.proxy_cooldowns.values()]
        if self.cooldown_until is not None:
            ends.append(self.cooldown_until)
        return max([0.0, *(end - now for end in ends)])


class Refusal(StrEnum):
    """Why a request may not go yet."""

    COOLDOWN = "cooldown"  # the host, or its proxy on it, is cooling after a 429/503
    CONNECTIONS = "connections"  # every connection the host (or the pair) may have is open


@dataclass(frozen=True, slots=True)
class Admission:
    """The store's answer to a request asking to go.

    Admitted: its slot is held (when the host counts connections) and its token taken; it
    sends after ``wait_s`` (the token may still be to come: the bucket lends ahead, so the
    request keeps its place in line). Refused (``refusal`` set): nothing was taken; ask again
    after ``wait_s``. ``rate_per_s`` and ``rate_changed_at`` are the host's rate in force, for
    the caller's adaptation (None: the host has no rate limit)."""

    refusal: Refusal | None
    wait_s: float
    rate_per_s: float | None = None
    rate_changed_at: float = 0.0

    @property
    def is_admitted(self) -> bool:
        """The request may go (after ``wait_s``)."""
        return self.refusal is None


FREE = Admission(None, 0.0)
