"""Selection: round robin by cursor, weighted in proportion, least connections, fastest by
score (success per second of latency); sticky while usable; site and region filters; the free
slot limit; and when the first unusable resource comes back."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from hauler.policy.selection import choose, eligible, first_back_at, score, serves
from hauler.resources import Counters, Resource, ResourceKind, ResourceSpec, ResourceState, Strategy

NOW = 1_700_000_000.0


def res(
    rid: str,
    *,
    weight: float = 1.0,
    region: str | None = None,
    sites: tuple[str, ...] = (),
    state: ResourceState = ResourceState.ACTIVE,
    until: float | None = None,
    **counters: object,
) -> Resource:
    spec = ResourceSpec(ResourceKind.PROXY, f"http://{rid}.test", weight, region, sites)
    return Resource(rid, spec, state, until, Counters(**counters))  # type: ignore[arg-type]


def pick(candidates: list[Resource], strategy: Strategy, **kw: object) -> str | None:
    """The id of what ``choose`` picks (None for nothing), with neutral options unless given."""
    options: dict[str, object] = {
        "now": NOW,
        "cursor": 0,
        "rng": random.Random(1),
        "sticky_id": None,
        "site": None,
        "region": None,
        "max_in_use": None,
    }
    options.update(kw)
    chosen = choose(candidates, strategy, **options)  # type: ignore[arg-type]
    return chosen.id if chosen is not None else None


def test_round_robin_takes_the_cursor_th_usable_one() -> None:
    pool = [res("a"), res("b", state=ResourceState.DISABLED), res("c"), res("d")]
    picked = [pick(pool, Strategy.ROUND_ROBIN, cursor=n) for n in range(6)]
    assert picked == ["a", "c", "d", "a", "c", "d"]


def test_weighted_picks_in_proportion_to_weight_and_never_a_zero_weight() -> None:
    pool = [res("a", weight=1), res("b", weight=3), res("z", weight=0)]
    rng = random.Random(42)
    counts = Counter(pick(pool, Strategy.WEIGHTED, rng=rng) for _ in range(8000))
    assert counts["z"] == 0
    assert counts["b"] / counts["a"] == pytest.approx(3.0, rel=0.1)


def test_weighted_with_every_weight_zero_is_uniform() -> None:
    pool = [res("a", weight=0), res("b", weight=0)]
    rng = random.Random(3)
    counts = Counter(pick(pool, Strategy.WEIGHTED, rng=rng) for _ in range(2000))
    assert counts["a"] == pytest.approx(1000, rel=0.1)


def test_least_connections_takes_the_fewest_lent_and_shares_ties_in_turn() -> None:
    pool = [res("a", in_use=3), res("b", in_use=1), res("c", in_use=1), res("d", in_use=2)]
    picked = [pick(pool, Strategy.LEAST_CONNECTIONS, cursor=n) for n in range(4)]
    assert picked == ["b", "c", "b", "c"]


def test_the_score_is_smoothed_success_per_second_of_latency() -> None:
    fresh = res("new")
    assert score(fresh) == pytest.approx(0.5 / 1.0)
    fast_flaky = res("f", uses=98, successes=48, latency_s=0.1)  # 49/100 per 0.1 s
    slow_sure = res("s", uses=98, successes=98, latency_s=0.2)  # 99/100 per 0.2 s
    assert score(fast_flaky) == pytest.approx(4.9)
    assert score(slow_sure) == pytest.approx(4.95)
    assert score(res("loopback", latency_s=0.0)) == pytest.approx(0.5 / 0.01)


def test_fastest_takes_the_best_score() -> None:
    pool = [
        res("slow", uses=10, successes=10, latency_s=2.0),
        res("fast", uses=10, successes=10, latency_s=0.2),
        res("failing", uses=10, successes=1, latency_s=0.1),
    ]
    assert [pick(pool, Strategy.FASTEST, cursor=n) for n in range(3)] == ["fast"] * 3


def test_sticky_is_kept_while_usable_then_the_strategy_chooses() -> None:
    pool = [res("a"), res("b"), res("c")]
    for strategy in Strategy:
        assert pick(pool, strategy, sticky_id="c", cursor=0) == "c"
    pool[2] = replace(pool[2], state=ResourceState.RESTING, until=NOW + 60)
    assert pick(pool, Strategy.ROUND_ROBIN, sticky_id="c", cursor=0) == "a"
    assert pick(pool, Strategy.ROUND_ROBIN, sticky_id="gone", cursor=1) == "b"


def test_a_sticky_one_that_does_not_serve_the_site_is_not_kept() -> None:
    pool = [res("a", sites=("vimeo.com",)), res("b")]
    assert pick(pool, Strategy.ROUND_ROBIN, sticky_id="a", site="youtube.com") == "b"


def test_a_resource_whose_time_is_over_is_eligible_again() -> None:
    pool = [res("a", state=ResourceState.BANNED, until=NOW - 1)]
    assert pick(pool, Strategy.ROUND_ROBIN) == "a"
    assert pick([res("a", state=ResourceState.BANNED, until=NOW + 1)], Strategy.FASTEST) is None


def test_sites_tie_a_resource_to_those_sites_and_their_subdomains() -> None:
    tied = res("t", sites=("YouTube.com",))
    free = res("f")
    assert serves(tied, site="www.youtube.com", region=None)
    assert serves(tied, site="youtube.com.", region=None)
    assert not serves(tied, site="notyoutube.com", region=None)
    assert not serves(tied, site=None, region=None)
    assert serves(free, site="anything.example", region=None)
    assert serves(free, site=None, region=None)
    assert pick([tied, free], Strategy.ROUND_ROBIN, site="vimeo.com", cursor=0) == "f"
    picks = {
        pick([tied, free], Strategy.ROUND_ROBIN, site="m.youtube.com", cursor=n) for n in range(2)
    }
    assert picks == {"t", "f"}


def test_a_region_pins_the_pool_to_that_region() -> None:
    pool = [res("eu", region="eu"), res("us", region="US"), res("none")]
    assert [r.id for r in eligible(pool, now=NOW, site=None, region="us", max_in_use=None)] == [
        "us"
    ]
    assert len(eligible(pool, now=NOW, site=None, region=None, max_in_use=None)) == 3
    assert pick(pool, Strategy.WEIGHTED, region="ap") is None


def test_max_in_use_leaves_out_the_full_ones() -> None:
    pool = [res("a", in_use=2), res("b", in_use=1)]
    assert pick(pool, Strategy.ROUND_ROBIN, max_in_use=2, cursor=0) == "b"
    assert pick(pool, Strategy.ROUND_ROBIN, max_in_use=1) is None


def test_first_back_at_is_the_earliest_end_of_a_rest_or_ban() -> None:
    pool = [
        res("banned", state=ResourceState.BANNED, until=NOW + 3600),
        res("resting", state=ResourceState.RESTING, until=NOW + 900),
        res("disabled", state=ResourceState.DISABLED),
        res("over", state=ResourceState.BANNED, until=NOW - 5),
    ]
    assert first_back_at(pool, NOW) == NOW + 900
    assert first_back_at([res("disabled", state=ResourceState.DISABLED)], NOW) is None
    assert first_back_at([], NOW) is None
