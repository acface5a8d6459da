"""The reports of ``hauler.poolops`` and their JSON records: what ``hauler proxy|account …
--json`` prints and what the HTTP API will answer about the proxy and account pools.

The store keeps every secret (proxy passwords, an account's cookies, headers and token: the
worker sends them); a record here never holds one. A proxy's URL has its password masked
(``hauler.redact``); an account shows only that it has cookies (how many), a token, and which
headers it sends, secret header values masked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hauler.cookies import parse_cookies
from hauler.redact import masked_headers, redact_url
from hauler.resources import Counters, Resource, ResourceKind, ResourceState


@dataclasses.dataclass(frozen=True, slots=True)
class PoolListing:
    """The resources of one pool (or both), and when they were read (epoch seconds): what
    "time left" is measured from."""

    resources: tuple[Resource, ...]
    at: float

    def of_kind(self, kind: ResourceKind) -> list[Resource]:
        """The resources of ``kind``, in the order they were added."""
        return [r for r in self.resources if r.spec.kind is kind]


@dataclasses.dataclass(frozen=True, slots=True)
class BadPoolLine:
    """A line of an import file that was not added: its number and why (never its text, which
    may hold a secret)."""

    line_no: int
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import added (as stored) and the lines it refused."""

    added: tuple[Resource, ...]
    bad: tuple[BadPoolLine, ...]
    at: float


def seconds_left(resource: Resource, now: float) -> float | None:
    """How long until a resting or banned resource comes back (0 once its time is over: it is
    lent again when next picked); None for an active or disabled one."""
    if resource.state not in (ResourceState.RESTING, ResourceState.BANNED):
        return None
    if resource.until is None:
        return None
    return max(0.0, resource.until - now)


def failures_total(counters: Counters) -> int:
    """Every failed use, whatever its class."""
    return sum(counters.failures.values())


def success_ratio(counters: Counters) -> float | None:
    """The score: successes over finished uses (lent ones still out do not count yet); None
    before the first use has finished."""
    finished = counters.successes + failures_total(counters)
    return None if finished == 0 else counters.successes / finished


def cookie_count(cookies: str | None) -> int:
    """How many cookies an account's Netscape text holds (0 for none or unparsable text)."""
    if not cookies:
        return 0
    try:
        return len(parse_cookies(cookies.splitlines(), "cookies"))
    except ValueError:
        return 0


def _common(resource: Resource, now: float) -> dict[str, Any]:
    counters = resource.counters
    ratio = success_ratio(counters)
    return {
        "id": resource.id,
        "kind": resource.spec.kind.value,
        "state": resource.state.value,
        "until": resource.until,
        "seconds_left": seconds_left(resource, now),
        "score": None if ratio is None else round(ratio, 4),
        "uses": counters.uses,
        "successes": counters.successes,
        "failures": dict(counters.failures),
        "last_error": counters.last_error,
        "latency_s": counters.latency_s,
        "in_use": counters.in_use,
        "bans": counters.bans,
        "weight": resource.spec.weight,
        "region": resource.spec.region,
        "sites": list(resource.spec.sites),
        "created_at": resource.created_at,
        "updated_at": resource.updated_at,
    }


def proxy_record(resource: Resource, now: float) -> dict[str, Any]:
    """A proxy as a JSON object: its URL with the password masked."""
    return {**_common(resource, now), "url": redact_url(resource.spec.name)}


def account_record(resource: Resource, now: float) -> dict[str, Any]:
    """An account as a JSON object: its name, how many cookies, whether it has a token, the
    headers it sends with secret values masked; never a cookie value or the token."""
    spec = resource.spec
    return {
        **_common(resource, now),
        "name": spec.name,
        "cookies": cookie_count(spec.cookies),
        "has_token": bool(spec.token),
        "headers": masked_headers(spec.headers),
    }


def resource_record(resource: Resource, now: float) -> dict[str, Any]:
    """A proxy's or an account's record, by its kind."""
    if resource.spec.kind is ResourceKind.PROXY:
        return proxy_record(resource, now)
    return account_record(resource, now)


def listing_record(listing: PoolListing) -> dict[str, Any]:
    """``hauler pools --json``: both pools."""
    return {
        "proxies": [proxy_record(r, listing.at) for r in listing.of_kind(ResourceKind.PROXY)],
        "accounts": [account_record(r, listing.at) for r in listing.of_kind(ResourceKind.ACCOUNT)],
        "at": listing.at,
    }


def import_record(report: ImportReport) -> dict[str, Any]:
    """``hauler proxy|account import --json``: what was added and the lines refused."""
    return {
        "added": [resource_record(r, report.at) for r in report.added],
        "bad": len(report.bad),
        "bad_lines": [{"line_no": b.line_no, "reason": b.reason} for b in report.bad],
    }
