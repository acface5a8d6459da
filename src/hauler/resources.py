"""The resources the fleet shares through the store: proxies and accounts, their states, and the
outcome of one use (what the ban policy decides on). Plain data, no I/O.

A proxy is a URL (``http://``, ``https://``, ``socks5://``, credentials allowed) with a weight,
a region and the sites it is meant for; an account is a name with what it sends: a Netscape
cookies file's content, extra headers, or a token (an ``Authorization: Bearer`` header), tied to
sites or not. Both carry the same counters and the same four states:

- ``active``: may be lent;
- ``resting`` until ``until``: used enough for now (an account after many uses), back by itself;
- ``banned`` until ``until``: a site refused it; back after the ban (longer at every new one),
  after a health probe when one is configured;
- ``disabled``: taken out by hand, until ``unban``/``reset``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ResourceKind(StrEnum):
    """Which pool a resource is in."""

    PROXY = "proxy"
    ACCOUNT = "account"


class ResourceState(StrEnum):
    """Whether a resource may be lent now."""

    ACTIVE = "active"
    RESTING = "resting"
    BANNED = "banned"
    DISABLED = "disabled"


class Strategy(StrEnum):
    """How a pool picks among its usable resources (``[pools] strategy``)."""

    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_CONNECTIONS = "least_connections"
    FASTEST = "fastest"


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """What a user adds: for a proxy, ``name`` is its URL; for an account, its name, and
    ``cookies`` (Netscape text), ``headers`` and ``token`` are what it sends."""

    kind: ResourceKind
    name: str
    weight: float = 1.0
    region: str | None = None
    sites: tuple[str, ...] = ()
    cookies: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None

    @property
    def key(self) -> str:
        """What makes two specs the same resource (its kind and name)."""
        return f"{self.kind.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class Counters:
    """What a resource has done: uses, successes, failures by error class, the last error, a
    latency average (EWMA, seconds), how many lent right now, how many bans so far, and the
    uses and the time since its last rest."""

    uses: int = 0
    successes: int = 0
    failures: Mapping[str, int] = field(default_factory=dict)
    last_error: str | None = None
    latency_s: float | None = None
    in_use: int = 0
    bans: int = 0
    uses_since_rest: int = 0
    active_since: float | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource as the store holds it."""

    id: str
    spec: ResourceSpec
    state: ResourceState = ResourceState.ACTIVE
    until: float | None = None  # resting/banned: when it comes back (epoch seconds)
    counters: Counters = field(default_factory=Counters)
    created_at: float = 0.0
    updated_at: float = 0.0

    def is_usable(self, now: float) -> bool:
        """Active, or resting/banned with its time over (it comes back when next picked)."""
        if self.state is ResourceState.ACTIVE:
            return True
        if self.state is ResourceState.DISABLED:
            return False
        return self.until is not None and self.until <= now


@dataclass(frozen=True, slots=True)
class Use:
    """How one use of a resource ended, as the ban policy sees it.

    ``error_class``: None for a success, else the ``hauler.errors.ErrorClass`` value;
    ``is_proxy_fault``: the proxy itself failed (could not connect, 407/502/503 from the proxy);
    ``partner``: the other resource of the request (the account a proxy served, or the proxy an
    account went through), for the proxy's sliding window of distinct accounts.
    """

    resource_id: str
    at: float
    error_class: str | None = None
    latency_s: float | None = None
    is_proxy_fault: bool = False
    partner: str | None = None

    @property
    def is_success(self) -> bool:
        """True when the use succeeded."""
        return self.error_class is None


def spec_record(spec: ResourceSpec) -> dict[str, Any]:
    """A spec as stored (JSON)."""
    return {
        "kind": spec.kind.value,
        "name": spec.name,
        "weight": spec.weight,
        "region": spec.region,
        "sites": list(spec.sites),
        "cookies": spec.cookies,
        "headers": dict(spec.headers),
        "token": spec.token,
    }


def spec_from_record(data: Mapping[str, Any]) -> ResourceSpec:
    """The inverse of ``spec_record``."""
    return ResourceSpec(
        kind=ResourceKind(data["kind"]),
        name=str(data["name"]),
        weight=float(data.get("weight", 1.0)),
        region=data.get("region"),
        sites=tuple(data.get("sites") or ()),
        cookies=data.get("cookies"),
        headers=dict(data.get("headers") or {}),
        token=data.get("token"),
    )
