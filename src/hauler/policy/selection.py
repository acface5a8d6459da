"""Which proxy or account a request attempt gets, pure: the pool's candidates filtered to those
usable now for the request's site and region, then one picked by the configured strategy, or
the lane's sticky one while it stays usable. When none fits, ``first_back_at`` says when the
first one comes back (the job waits until then; it does not fail).

Strategies (``[pools] strategy``):

- ``round_robin``: the eligible ones in the given order, the ``cursor``-th (modulo their count);
- ``weighted``: at random in proportion to ``spec.weight`` (weights <= 0 never, unless all are);
- ``least_connections``: the fewest lent right now (``counters.in_use``), ties in turn by cursor;
- ``fastest``: the highest ``score``, ties in turn by cursor.

``score`` is successes per second of latency: ``(successes + 1) / (uses + 2)`` (the success
ratio with one success and one failure assumed, so a new resource starts at 1/2, neither
shunned nor preferred) divided by the latency EWMA (``UNKNOWN_LATENCY_S`` before any, never
below ``MIN_LATENCY_S``). Its inverse is the expected latency per success when a failure costs
as long as a success: a 100 ms proxy that fails half the time scores like a 200 ms one that
never does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hauler.resources import Resource, ResourceState, Strategy

# The latency a resource is assumed to have before it reports one: a typical proxied request.
UNKNOWN_LATENCY_S = 1.0
# Below this a latency is noise (a loopback proxy); it keeps the score finite.
MIN_LATENCY_S = 0.01


def serves(resource: Resource, *, site: str | None, region: str | None) -> bool:
    """True when ``resource`` may serve a request to ``site`` (a host) in ``region``: one with no
    sites serves every site, one tied to sites only those and their subdomains (and no request
    whose site is unknown); a region asked for must be the resource's."""
    if region is not None and (resource.spec.region or "").lower() != region.lower():
        return False
    if not resource.spec.sites:
        return True
    if site is None:
        return False
    host = _host(site)
    return any(
        host == _host(tied) or host.endswith("." + _host(tied)) for tied in resource.spec.sites
    )


def _host(site: str) -> str:
    return site.strip().lower().rstrip(".")


def eligible(
    candidates: Sequence[Resource],
    *,
    now: float,
    site: str | None,
    region: str | None,
    max_in_use: int | None,
) -> list[Resource]:
    """The candidates usable now (active, or their rest/ban over) that serve the site and region
    and have a free slot (fewer than ``max_in_use`` lent), in their given order."""
    return [
        resource
        for resource in candidates
        if resource.is_usable(now)
        and serves(resource, site=site, region=region)
        and (max_in_use is None or resource.counters.in_use < max_in_use)
    ]


def score(resource: Resource) -> float:
    """The ``fastest`` strategy's score: smoothed success ratio per second of latency EWMA."""
    counters = resource.counters
    ratio = (counters.successes + 1) / (counters.uses + 2)
    latency = counters.latency_s if counters.latency_s is not None else UNKNOWN_LATENCY_S
    return ratio / max(latency, MIN_LATENCY_S)


def choose(
    candidates: Sequence[Resource],
    strategy: Strategy,
    *,
    now: float,
    cursor: int,
    rng: random.Random,
    sticky_id: str | None,
    site: str | None,
    region: str | None,
    max_in_use: int | None,
) -> Resource | None:
    """The resource a request attempt gets, or None when none is eligible.

    ``sticky_id`` (the one that last succeeded for this lane and site) is kept while it is
    eligible; ``cursor`` is the pool's turn counter (round robin, and ties of the others), which
    the caller advances after each pick; ``rng`` draws the weighted choice."""
    usable = eligible(candidates, now=now, site=site, region=region, max_in_use=max_in_use)
    if not usable:
        return None
    for resource in usable:
        if resource.id == sticky_id:
            return resource
    if strategy is Strategy.ROUND_ROBIN:
        return usable[cursor % len(usable)]
    if strategy is Strategy.WEIGHTED:
        return _weighted(usable, rng)
    if strategy is Strategy.LEAST_CONNECTIONS:
        fewest = min(resource.counters.in_use for resource in usable)
        return _in_turn([r for r in usable if r.counters.in_use == fewest], cursor)
    best = max(score(resource) for resource in usable)
    return _in_turn([r for r in usable if score(r) == best], cursor)


def _in_turn(tied: Sequence[Resource], cursor: int) -> Resource:
    # Ties taken in turn, so equal resources share the load instead of the first taking it all.
    return tied[cursor % len(tied)]


def _weighted(usable: Sequence[Resource], rng: random.Random) -> Resource:
    weights = [max(0.0, resource.spec.weight) for resource in usable]
    total = sum(weights)
    if total <= 0:
        return usable[rng.randrange(len(usable))]
    point = rng.random() * total
    for resource, weight in zip(usable, weights, strict=True):
        if point < weight:
            return resource
        point -= weight
    # Float rounding can leave the point a hair past the last weight: the last positive one.
    return next(r for r, w in zip(reversed(usable), reversed(weights), strict=True) if w > 0)


def first_back_at(resources: Sequence[Resource], now: float) -> float | None:
    """When the first resource not usable now comes back (its rest or ban ends), or None when
    none will by itself (all disabled, or none given). What ``explain`` tells a waiting job."""
    ends = [
        resource.until
        for resource in resources
        if resource.state in (ResourceState.RESTING, ResourceState.BANNED)
        and resource.until is not None
        and resource.until > now
    ]
    return min(ends) if ends else None
