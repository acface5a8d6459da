"""The contract of ``ResourcePools``: proxies and accounts added, listed, lent, given back,
banned and reset; run on SQLite and Redis.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock
(fixtures: ``tests/fixtures/stores.py``). The concurrency tests run their calls at once from
several store connections (``open_more``: other workers' views of the same store), so that a
lost update or a slot taken twice shows in the counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from hauler.clock import FakeClock
from hauler.policy import selection
from hauler.resources import (
    Counters,
    Resource,
    ResourceKind,
    ResourceSpec,
    ResourceState,
    Strategy,
    Use,
)
from hauler.store import ResourcePools, Store, pools_updates
from hauler.store.base import MAX_USE_HISTORY
from tests.fixtures.stores import Opener

PROXY = ResourceKind.PROXY
ACCOUNT = ResourceKind.ACCOUNT
HOUR_S = 3600.0


def proxy(url: str = "http://user:secret@127.0.0.1:3128", **more: object) -> ResourceSpec:
    return ResourceSpec(kind=PROXY, name=url, **more)  # type: ignore[arg-type]


def account(name: str = "alice", **more: object) -> ResourceSpec:
    return ResourceSpec(kind=ACCOUNT, name=name, **more)  # type: ignore[arg-type]


def first_usable(resources: Sequence[Resource], now: float) -> Resource | None:
    """The simplest chooser: the first usable resource, restored to active if it was due."""
    for r in resources:
        if r.is_usable(now):
            return dataclasses.replace(r, state=ResourceState.ACTIVE, until=None)
    return None


def one_at_a_time(resources: Sequence[Resource], now: float) -> Resource | None:
    """A chooser that refuses a resource already lent: each has one slot."""
    return first_usable([r for r in resources if r.counters.in_use < 1], now)


def tally(resource: Resource, history: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
    """A decider: counts successes and failures by class, bans for an hour on bot_check."""
    use = history[-1]
    c = resource.counters
    if use.is_success:
        counters = dataclasses.replace(c, successes=c.successes + 1)
        return dataclasses.replace(resource, counters=counters), history
    failures = {**c.failures, use.error_class or "": c.failures.get(use.error_class or "", 0) + 1}
    counters = dataclasses.replace(c, failures=failures, last_error=use.error_class)
    if use.error_class == "bot_check":
        banned = dataclasses.replace(
            resource, state=ResourceState.BANNED, until=use.at + HOUR_S,
            counters=dataclasses.replace(counters, bans=c.bans + 1),
        )  # fmt: skip
        return banned, history
    return dataclasses.replace(resource, counters=counters), history


def success(resource_id: str, at: float, partner: str | None = None) -> Use:
    return Use(resource_id=resource_id, at=at, latency_s=0.05, partner=partner)


# --- add, list, get, remove -------------------------------------------------------------------


async def test_add_gives_short_ids_and_stores_every_field(
    store: ResourcePools, clock: FakeClock
) -> None:
    spec_p = proxy(weight=2.5, region="eu", sites=("youtube.com", "bilibili.com"))
    spec_a = account(
        cookies="# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tTRUE\t0\tsid\tabc\n",
        headers={"X-Token": "t0ps3cret"}, token="bearer-xyz", sites=("example.com",),
    )  # fmt: skip
    ids = await store.add_resources([spec_p, spec_a, proxy("socks5://127.0.0.1:1080")])
    assert ids == ["p1", "a1", "p2"]
    got = await store.get_resource("a1")
    assert got is not None
    assert (got.id, got.spec, got.state, got.until) == ("a1", spec_a, ResourceState.ACTIVE, None)
    assert got.counters.uses == 0 and got.counters.in_use == 0
    assert got.created_at == got.updated_at == clock.now()
    again = await store.get_resource("p1")
    assert again is not None and again.spec == spec_p and again.spec.sites == spec_p.sites
    assert await store.get_resource("p9") is None
    assert await store.get_resource("nonsense") is None


async def test_list_in_the_order_added_and_by_kind(store: ResourcePools) -> None:
    await store.add_resources([proxy("http://127.0.0.1:1"), account("a"), account("b")])
    await store.add_resources([proxy("http://127.0.0.1:2")])
    assert [r.id for r in await store.list_resources(PROXY)] == ["p1", "p2"]
    assert [r.spec.name for r in await store.list_resources(ACCOUNT)] == ["a", "b"]
    assert sorted(r.id for r in await store.list_resources()) == ["a1", "a2", "p1", "p2"]
    assert await store.add_resources([]) == []


async def test_adding_a_known_key_updates_its_spec_and_keeps_its_state(
    store: ResourcePools, clock: FakeClock
) -> None:
    (pid,) = await store.add_resources([proxy(weight=1.0)])
    assert await store.lend(PROXY, first_usable) is not None
    await store.set_resource_state(pid, ResourceState.BANNED, clock.now() + HOUR_S)
    clock.advance(5)
    updated = proxy(weight=3.0, region="us")
    assert await store.add_resources([updated, account(), updated]) == [pid, "a1", pid]
    got = await store.get_resource(pid)
    assert got is not None and got.spec == updated
    assert (got.state, got.until) == (ResourceState.BANNED, clock.now() - 5 + HOUR_S)
    assert (got.counters.uses, got.counters.in_use) == (1, 1)
    assert len(await store.list_resources(PROXY)) == 1


async def test_remove_forgets_it_and_its_id_is_not_reused(store: ResourcePools) -> None:
    pid, _ = await store.add_resources([proxy(), proxy("http://127.0.0.1:2")])
    lent = await store.lend(PROXY, first_usable)
    assert lent is not None and lent.id == pid
    await store.give_back(pid, success(pid, 1.0), tally)
    assert await store.remove_resource(pid) is True
    assert await store.remove_resource(pid) is False
    assert await store.get_resource(pid) is None
    assert await store.resource_uses(pid) == []
    assert [r.id for r in await store.list_resources()] == ["p2"]
    assert await store.add_resources([proxy()]) == ["p3"]  # the same URL again: a new one
    fresh = await store.get_resource("p3")
    assert fresh is not None and fresh.counters.uses == 0


# --- lend -----------------------------------------------------------------------------------


async def test_lend_stores_the_choice_with_one_more_use_and_in_use(
    store: ResourcePools, clock: FakeClock
) -> None:
    await store.add_resources([proxy("http://127.0.0.1:1"), proxy("http://127.0.0.1:2")])
    clock.advance(3)
    first = await store.lend(PROXY, first_usable)
    second = await store.lend(PROXY, one_at_a_time)
    assert first is not None and second is not None
    assert (first.id, first.counters.in_use, first.counters.uses) == ("p1", 1, 1)
    assert (second.id, second.counters.in_use, second.counters.uses) == ("p2", 1, 1)
    assert first.updated_at == clock.now()
    assert await store.get_resource("p1") == first
    again = await store.lend(PROXY, first_usable)
    assert again is not None and (again.counters.in_use, again.counters.uses) == (2, 2)
    assert await store.lend(ACCOUNT, first_usable) is None  # no accounts at all


async def test_lend_writes_nothing_when_the_chooser_declines(store: Store) -> None:
    (pid,) = await store.add_resources([proxy()])
    before, version = await store.get_resource(pid), await store.pools_version()
    assert await store.lend(PROXY, lambda resources, now: None) is None
    assert await store.get_resource(pid) == before
    assert await store.pools_version() == version


async def test_lend_keeps_id_spec_and_counts_whatever_the_chooser_returns(
    store: ResourcePools,
) -> None:
    await store.add_resources([proxy(weight=2.0)])

    def meddling(resources: Sequence[Resource], now: float) -> Resource:
        r = resources[0]
        return dataclasses.replace(r, spec=proxy("http://evil:1"), created_at=-1.0)

    lent = await store.lend(PROXY, meddling)
    assert lent is not None and lent.spec == proxy(weight=2.0) and lent.created_at > 0

    def stranger(resources: Sequence[Resource], now: float) -> Resource:
        return dataclasses.replace(resources[0], id="p99")

    with pytest.raises(ValueError, match="p99"):
        await store.lend(PROXY, stranger)


async def test_lend_restores_a_resource_whose_ban_ended(
    store: ResourcePools, clock: FakeClock
) -> None:
    (pid,) = await store.add_resources([proxy()])
    await store.set_resource_state(pid, ResourceState.BANNED, clock.now() + HOUR_S)
    assert await store.lend(PROXY, first_usable) is None
    clock.advance(HOUR_S)
    lent = await store.lend(PROXY, first_usable)
    assert lent is not None and (lent.state, lent.until) == (ResourceState.ACTIVE, None)
    stored = await store.get_resource(pid)
    assert stored is not None and stored.state is ResourceState.ACTIVE


async def test_concurrent_lends_never_both_take_the_last_slot(
    store: ResourcePools, open_more: Opener
) -> None:
    (pid,) = await store.add_resources([proxy()])
    others = [store, *[await open_more() for _ in range(3)]]
    lends = [others[i % len(others)].lend(PROXY, one_at_a_time) for i in range(24)]
    results = await asyncio.gather(*lends)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].id == pid
    stored = await store.get_resource(pid)
    assert stored is not None and (stored.counters.in_use, stored.counters.uses) == (1, 1)


async def test_concurrent_lends_share_two_slots_exactly(
    store: ResourcePools, open_more: Opener
) -> None:
    await store.add_resources([proxy("http://127.0.0.1:1"), proxy("http://127.0.0.1:2")])
    others = [store, *[await open_more() for _ in range(3)]]
    results = await asyncio.gather(*[others[i % 4].lend(PROXY, one_at_a_time) for i in range(20)])
    assert sorted(r.id for r in results if r is not None) == ["p1", "p2"]


# --- give back --------------------------------------------------------------------------------


async def test_give_back_applies_the_decision_and_keeps_the_history(
    store: ResourcePools, clock: FakeClock
) -> None:
    (aid,) = await store.add_resources([account()])
    await store.lend(ACCOUNT, first_usable)
    await store.lend(ACCOUNT, first_usable)
    clock.advance(2)
    ok = success(aid, clock.now(), partner="p1")
    back = await store.give_back(aid, ok, tally)
    assert back is not None and (back.counters.in_use, back.counters.successes) == (1, 1)
    assert back.updated_at == clock.now()
    bad = Use(resource_id=aid, at=clock.now(), error_class="bot_check", partner="p2")
    banned = await store.give_back(aid, bad, tally)
    assert banned is not None and banned.state is ResourceState.BANNED
    assert banned.until == clock.now() + HOUR_S and banned.counters.bans == 1
    assert banned.counters.failures == {"bot_check": 1} and banned.counters.in_use == 0
    assert await store.get_resource(aid) == banned
    assert await store.resource_uses(aid) == [ok, bad]


async def test_give_back_never_counts_below_zero_and_not_for_the_unknown(
    store: ResourcePools,
) -> None:
    (pid,) = await store.add_resources([proxy()])
    back = await store.give_back(pid, success(pid, 1.0), tally)
    assert back is not None and back.counters.in_use == 0 and back.counters.successes == 1
    called: list[str] = []

    def spy(r: Resource, h: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
        called.append(r.id)
        return r, h

    assert await store.give_back("p42", success("p42", 1.0), spy) is None
    assert called == []


async def test_give_back_keeps_only_the_newest_uses_the_decider_keeps(
    store: ResourcePools,
) -> None:
    (pid,) = await store.add_resources([proxy()])
    for i in range(MAX_USE_HISTORY + 10):
        await store.give_back(pid, success(pid, float(i)), tally)
    uses = await store.resource_uses(pid)
    assert [u.at for u in uses] == [float(i) for i in range(10, MAX_USE_HISTORY + 10)]

    def only_failures(r: Resource, h: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
        return r, [u for u in h if not u.is_success]

    failure = Use(resource_id=pid, at=99.0, error_class="transient", is_proxy_fault=True)
    await store.give_back(pid, failure, only_failures)
    assert await store.resource_uses(pid) == [failure]


async def test_concurrent_give_backs_lose_no_update(
    store: ResourcePools, open_more: Opener, clock: FakeClock
) -> None:
    (pid,) = await store.add_resources([proxy()])
    others = [store, *[await open_more() for _ in range(4)]]
    n = 50
    await asyncio.gather(*[others[i % 5].lend(PROXY, first_usable) for i in range(n)])
    lent = await store.get_resource(pid)
    assert lent is not None and (lent.counters.in_use, lent.counters.uses) == (n, n)
    uses = [success(pid, clock.now() + i, partner=f"a{i}") for i in range(n)]
    await asyncio.gather(*[others[i % 5].give_back(pid, uses[i], tally) for i in range(n)])
    back = await store.get_resource(pid)
    assert back is not None
    assert (back.counters.in_use, back.counters.uses, back.counters.successes) == (0, n, n)
    history = await store.resource_uses(pid)
    assert sorted(u.partner or "" for u in history) == sorted(f"a{i}" for i in range(n))


# --- states by hand, reset, the version -------------------------------------------------------


async def test_ban_unban_disable_by_hand(
    store: ResourcePools, open_more: Opener, clock: FakeClock
) -> None:
    (aid,) = await store.add_resources([account()])
    other = await open_more()
    assert await store.set_resource_state(aid, ResourceState.BANNED, clock.now() + 60) is True
    seen = await other.get_resource(aid)  # another worker sees it at once
    assert seen is not None and (seen.state, seen.until) == (ResourceState.BANNED, clock.now() + 60)
    assert await other.lend(ACCOUNT, first_usable) is None
    assert await store.set_resource_state(aid, ResourceState.ACTIVE, None) is True
    lent = await other.lend(ACCOUNT, first_usable)
    assert lent is not None and lent.id == aid
    assert await store.set_resource_state(aid, ResourceState.DISABLED, clock.now() + 5)
    clock.advance(10)
    disabled = await store.get_resource(aid)
    assert disabled is not None and (disabled.state, disabled.until) == (
        ResourceState.DISABLED, None,
    )  # fmt: skip
    assert disabled.counters.uses == 1  # counters kept
    assert await store.lend(ACCOUNT, first_usable) is None
    with pytest.raises(ValueError, match="until"):
        await store.set_resource_state(aid, ResourceState.RESTING, None)
    assert await store.set_resource_state("a77", ResourceState.DISABLED, None) is False


async def test_reset_zeroes_counters_and_history(store: ResourcePools, clock: FakeClock) -> None:
    (pid,) = await store.add_resources([proxy()])
    await store.lend(PROXY, first_usable)
    bad = Use(resource_id=pid, at=clock.now(), error_class="bot_check")
    await store.give_back(pid, bad, tally)
    assert await store.reset_resource(pid) is True
    got = await store.get_resource(pid)
    assert got is not None and (got.state, got.until) == (ResourceState.ACTIVE, None)
    assert got.counters == type(got.counters)()
    assert await store.resource_uses(pid) == []
    assert await store.reset_resource("p5") is False


async def test_the_version_moves_with_every_change_of_state(
    store: ResourcePools, open_more: Opener, clock: FakeClock
) -> None:
    other = await open_more()
    seen = [await other.pools_version()]

    async def moved() -> bool:
        seen.append(await other.pools_version())
        return seen[-1] != seen[-2]

    (pid,) = await store.add_resources([proxy()])
    assert await moved()
    await store.lend(PROXY, first_usable)
    await store.give_back(pid, success(pid, clock.now()), tally)
    assert not await moved()  # only counters changed
    await store.lend(PROXY, first_usable)
    await store.give_back(pid, Use(resource_id=pid, at=clock.now(), error_class="bot_check"), tally)
    assert await moved()  # the decider banned it
    clock.advance(HOUR_S)
    await store.lend(PROXY, first_usable)
    assert await moved()  # the chooser restored it
    await store.set_resource_state(pid, ResourceState.DISABLED, None)
    assert await moved()
    await store.reset_resource(pid)
    assert await moved()
    await store.add_resources([proxy(weight=9.0)])
    assert await moved()
    await store.remove_resource(pid)
    assert await moved()


# --- lend_by: the built-in strategies, in the store ---------------------------------------------

RR = Strategy.ROUND_ROBIN
LC = Strategy.LEAST_CONNECTIONS
FAST = Strategy.FASTEST
WEIGHTED = Strategy.WEIGHTED


def proxies(n: int, **more: object) -> list[ResourceSpec]:
    return [proxy(f"http://127.0.0.1:{1000 + i}", **more) for i in range(n)]


async def lend_ids(
    store: ResourcePools, strategy: Strategy, n: int, **options: object
) -> list[str]:
    """The ids of ``n`` lend_by calls in a row (None as '-')."""
    ids = []
    for _ in range(n):
        lent = await store.lend_by(PROXY, strategy, **options)  # type: ignore[arg-type]
        ids.append(lent.id if lent is not None else "-")
    return ids


async def test_lend_by_stores_one_more_use_and_in_use(
    store: ResourcePools, clock: FakeClock
) -> None:
    await store.add_resources(proxies(2))
    clock.advance(3)
    lent = await store.lend_by(PROXY, RR)
    assert lent is not None and lent.id == "p1"
    assert (lent.counters.in_use, lent.counters.uses, lent.updated_at) == (1, 1, clock.now())
    assert await store.get_resource("p1") == lent
    assert lent.spec == proxies(2)[0] and lent.created_at == clock.now() - 3
    assert await store.lend_by(ACCOUNT, RR) is None  # no accounts at all
    with pytest.raises(ValueError, match="rng_value"):
        await store.lend_by(PROXY, WEIGHTED, rng_value=1.0)


async def test_lend_by_round_robin_takes_each_in_turn_and_skips_the_unusable(
    store: ResourcePools, clock: FakeClock
) -> None:
    await store.add_resources(proxies(4))
    assert await lend_ids(store, RR, 6) == ["p1", "p2", "p3", "p4", "p1", "p2"]
    await store.set_resource_state("p3", ResourceState.BANNED, clock.now() + HOUR_S)
    await store.set_resource_state("p4", ResourceState.DISABLED, None)
    assert await lend_ids(store, RR, 3) == ["p1", "p2", "p1"]
    await store.remove_resource("p2")
    await store.add_resources([proxy("http://127.0.0.1:9")])
    assert await lend_ids(store, RR, 3) == ["p5", "p1", "p5"]


async def test_lend_by_least_connections_takes_the_fewest_lent_ties_in_turn(
    store: ResourcePools,
) -> None:
    await store.add_resources(proxies(3))
    assert await lend_ids(store, LC, 4) == ["p1", "p2", "p3", "p1"]
    await store.give_back("p2", success("p2", 1.0), tally)  # lent: p1 2, p2 0, p3 1
    # p2 (0); then p2 and p3 tie at 1: p3, after the cursor (p2); then p2, the fewest again
    assert await lend_ids(store, LC, 3) == ["p2", "p3", "p2"]
    counts = [r.counters.in_use for r in await store.list_resources(PROXY)]
    assert counts == [2, 2, 2]


async def test_lend_by_fastest_takes_the_best_score_ties_in_turn(store: ResourcePools) -> None:
    await store.add_resources(proxies(3))
    assert await lend_ids(store, FAST, 3) == ["p1", "p2", "p3"]  # all unknown: in turn
    for pid, latency_s in (("p1", 0.5), ("p2", 0.1), ("p3", 0.3)):
        use = Use(resource_id=pid, at=1.0, latency_s=latency_s)
        await store.give_back(pid, use, with_latency)
    # scores (successes + 1) / (uses + 2) / latency: p1 1.33, p2 6.67, p3 2.22; each lend of
    # p2 counts a use (5.0, then 4.0): still the best
    assert await lend_ids(store, FAST, 2) == ["p2", "p2"]
    await store.set_resource_state("p2", ResourceState.RESTING, 10.0**12)
    assert await lend_ids(store, FAST, 1) == ["p3"]


def with_latency(resource: Resource, history: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
    """A decider: a success with the use's latency as the average."""
    c = resource.counters
    counters = dataclasses.replace(c, successes=c.successes + 1, latency_s=history[-1].latency_s)
    return dataclasses.replace(resource, counters=counters), history


async def test_lend_by_weighted_picks_by_the_running_sum_of_weights(
    store: ResourcePools, clock: FakeClock
) -> None:
    await store.add_resources(
        [proxy("http://127.0.0.1:1", weight=1.0), proxy("http://127.0.0.1:2", weight=0.0),
         proxy("http://127.0.0.1:3", weight=3.0)]
    )  # fmt: skip
    # [0, 1) -> p1, [1, 4) -> p3 (of 4); p2 weighs nothing and is never picked
    picks = {}
    for rng_value in (0.0, 0.24, 0.25, 0.5, 0.99):
        lent = await store.lend_by(PROXY, WEIGHTED, rng_value=rng_value)
        assert lent is not None
        picks[rng_value] = lent.id
    assert picks == {0.0: "p1", 0.24: "p1", 0.25: "p3", 0.5: "p3", 0.99: "p3"}
    await store.set_resource_state("p3", ResourceState.BANNED, clock.now() + HOUR_S)
    lent = await store.lend_by(PROXY, WEIGHTED, rng_value=0.5)  # p3's share wraps to p1
    assert lent is not None and lent.id == "p1"
    await store.remove_resource("p1")
    assert await store.lend_by(PROXY, WEIGHTED, rng_value=0.1) is None  # only p2 (0) usable


async def test_lend_by_weighted_with_every_weight_zero_takes_them_in_turn(
    store: ResourcePools,
) -> None:
    await store.add_resources(proxies(2, weight=0.0))
    assert await lend_ids(store, WEIGHTED, 3, rng_value=0.7) == ["p1", "p2", "p1"]


async def test_lend_by_filters_by_site_and_region(store: ResourcePools) -> None:
    await store.add_resources(
        [proxy("http://127.0.0.1:1", sites=("YouTube.com.",)),
         proxy("http://127.0.0.1:2", region="EU"),
         proxy("http://127.0.0.1:3", region="us", sites=("example.com",)),
         proxy("http://127.0.0.1:4")]
    )  # fmt: skip
    assert await lend_ids(store, RR, 3, site="www.youtube.com") == ["p1", "p2", "p4"]
    assert await lend_ids(store, RR, 2, site="notyoutube.com") == ["p2", "p4"]
    assert await lend_ids(store, RR, 2, region="eu") == ["p2", "p2"]
    assert await lend_ids(store, RR, 2, region="US", site="a.example.com") == ["p3", "p3"]
    assert await lend_ids(store, RR, 1, region="us") == ["-"]  # p3 serves example.com only
    assert await lend_ids(store, LC, 1, site="youtube.com", region="asia") == ["-"]


async def test_lend_by_max_in_use_and_sticky(store: ResourcePools) -> None:
    await store.add_resources(proxies(3))
    assert await lend_ids(store, RR, 2, sticky_id="p3") == ["p3", "p3"]
    assert await lend_ids(store, RR, 3, sticky_id="p3", max_in_use=2) == ["p1", "p2", "p1"]
    assert await lend_ids(store, RR, 2, max_in_use=2) == ["p2", "-"]
    await store.give_back("p3", success("p3", 1.0), tally)
    assert await lend_ids(store, LC, 1, sticky_id="p3", max_in_use=2) == ["p3"]
    assert await lend_ids(store, RR, 1, sticky_id="p9") == ["p1"]


async def test_lend_by_restores_a_resource_whose_ban_or_rest_ended(
    store: ResourcePools, clock: FakeClock
) -> None:
    pid, aid = await store.add_resources([proxy(), account()])
    await store.lend_by(ACCOUNT, RR)
    await store.give_back(aid, success(aid, clock.now()), tally)
    await store.set_resource_state(pid, ResourceState.BANNED, clock.now() + HOUR_S)
    await store.set_resource_state(aid, ResourceState.RESTING, clock.now() + 60)
    assert await store.lend_by(PROXY, LC) is None
    assert await store.lend_by(ACCOUNT, FAST) is None
    version = await store.pools_version()
    clock.advance(HOUR_S)
    lent = await store.lend_by(PROXY, LC)
    assert lent is not None and (lent.state, lent.until) == (ResourceState.ACTIVE, None)
    assert (lent.counters.uses_since_rest, lent.counters.active_since) == (0, None)
    assert await store.get_resource(pid) == lent
    assert await store.pools_version() != version
    back = await store.lend_by(ACCOUNT, WEIGHTED, rng_value=0.3)
    assert back is not None and back.state is ResourceState.ACTIVE
    assert (back.counters.uses, back.counters.successes, back.counters.in_use) == (2, 1, 1)


async def test_lend_by_concurrent_lends_never_both_take_the_last_slot(
    store: ResourcePools, open_more: Opener
) -> None:
    (pid,) = await store.add_resources([proxy()])
    others = [store, *[await open_more() for _ in range(3)]]
    strategies = list(Strategy)
    lends = [
        others[i % 4].lend_by(PROXY, strategies[i % 4], max_in_use=1, rng_value=0.5)
        for i in range(24)
    ]
    results = await asyncio.gather(*lends, others[0].lend(PROXY, one_at_a_time))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].id == pid
    stored = await store.get_resource(pid)
    assert stored is not None and (stored.counters.in_use, stored.counters.uses) == (1, 1)


async def test_lend_by_and_lend_see_each_other_and_give_back(
    store: ResourcePools, open_more: Opener
) -> None:
    await store.add_resources(proxies(2))
    other = await open_more()
    assert await lend_ids(store, LC, 1) == ["p1"]
    lent = await other.lend(PROXY, one_at_a_time)  # the chooser sees p1 taken
    assert lent is not None and lent.id == "p2"
    assert await lend_ids(other, LC, 1, max_in_use=1) == ["-"]
    await store.give_back("p1", success("p1", 1.0), tally)
    assert await lend_ids(other, LC, 1, max_in_use=1) == ["p1"]
    await store.reset_resource("p2")
    assert await lend_ids(store, LC, 1, max_in_use=1) == ["p2"]


async def test_lends_and_give_backs_at_once_lose_no_update(
    store: ResourcePools, open_more: Opener, clock: FakeClock
) -> None:
    await store.add_resources(proxies(2))
    clients = [store, *[await open_more() for _ in range(3)]]

    async def loop(client: ResourcePools, n: int) -> None:
        for i in range(n):
            lent = await client.lend_by(PROXY, LC if i % 2 else RR)
            assert lent is not None
            await client.give_back(lent.id, success(lent.id, clock.now() + i), tally)

    await asyncio.gather(*[loop(client, 15) for client in clients])
    pool = await store.list_resources(PROXY)
    assert [r.counters.in_use for r in pool] == [0, 0]
    assert sum(r.counters.uses for r in pool) == sum(r.counters.successes for r in pool) == 60
    histories = [await store.resource_uses(r.id) for r in pool]
    assert sum(len(history) for history in histories) == 60


@pytest.mark.parametrize(
    ("uses", "successes", "latency_s"),
    [(0, 0, None), (3, 1, 0.05), (7, 7, 0.001), (1000, 3, 2.5), (2, 1, 0.3)],
)
def test_the_fast_rank_is_the_policy_score_in_steps(
    uses: int, successes: int, latency_s: float | None
) -> None:
    counters = Counters(uses=uses, successes=successes, latency_s=latency_s)
    score = selection.score(Resource(id="p1", spec=proxy(), counters=counters))
    steps = int(score * pools_updates.SCORE_STEPS)
    assert pools_updates.fast_rank(counters) == pools_updates.FAST_TOP - steps


# --- holders: what each worker holds, released when it died ------------------------------------


async def in_use_of(store: ResourcePools) -> dict[str, int]:
    return {r.id: r.counters.in_use for r in await store.list_resources()}


async def test_holds_are_counted_per_holder_and_go_with_the_give_backs(
    store: ResourcePools, clock: FakeClock
) -> None:
    p1, p2 = await store.add_resources(proxies(2))
    by_chooser = await store.lend(PROXY, first_usable, holder="w1")
    by_strategy = await store.lend_by(PROXY, RR, sticky_id=p1, holder="w1")
    other = await store.lend_by(PROXY, RR, sticky_id=p2, holder="w2")
    untracked = await store.lend_by(PROXY, RR, sticky_id=p2)
    assert [r.id for r in (by_chooser, by_strategy, other, untracked) if r] == [p1, p1, p2, p2]
    assert await store.resource_holders() == {"w1": 2, "w2": 1}
    assert await in_use_of(store) == {p1: 2, p2: 2}
    back = await store.give_back(p1, success(p1, clock.now()), tally, holder="w1")
    assert back is not None and back.counters.in_use == 1
    assert await store.resource_holders() == {"w1": 1, "w2": 1}
    await store.give_back(p1, success(p1, clock.now()), tally, holder="w1")
    await store.give_back(p2, success(p2, clock.now()), tally)  # the untracked one
    assert await store.resource_holders() == {"w2": 1}
    assert await in_use_of(store) == {p1: 0, p2: 1}


async def test_release_holder_gives_back_all_it_held_and_moves_nothing_else(
    store: ResourcePools, clock: FakeClock
) -> None:
    p1, p2 = await store.add_resources(proxies(2))
    (aid,) = await store.add_resources([account()])
    for resource_id, holder in [(p1, "w1"), (p1, "w1"), (p2, "w1"), (p1, "w2"), (p2, None)]:
        assert await store.lend_by(PROXY, RR, sticky_id=resource_id, holder=holder)
    assert await store.lend(ACCOUNT, first_usable, holder="w1")
    await store.give_back(p2, Use(p2, clock.now(), "bot_check"), tally)  # bans p2
    before = {r.id: r for r in await store.list_resources()}
    histories = {i: await store.resource_uses(i) for i in before}
    version = await store.pools_version()
    clock.advance(5)
    assert await store.release_holder("w1") == 4
    after = {r.id: r for r in await store.list_resources()}
    assert {i: r.counters.in_use for i, r in after.items()} == {p1: 1, p2: 0, aid: 0}
    assert await store.resource_holders() == {"w2": 1}
    for i, r in after.items():
        kept = dataclasses.replace(r.counters, in_use=before[i].counters.in_use)
        assert (r.state, r.until, kept) == (before[i].state, before[i].until, before[i].counters)
        assert await store.resource_uses(i) == histories[i]
    assert after[p2].state is ResourceState.BANNED
    assert await store.pools_version() == version
    assert await store.release_holder("w1") == 0
    assert await store.release_holder("nobody") == 0


async def test_a_give_back_after_the_release_takes_nothing_off(
    store: ResourcePools, open_more: Opener, clock: FakeClock
) -> None:
    (pid,) = await store.add_resources([proxy()])
    other = await open_more()
    await store.lend_by(PROXY, LC, holder="dead")
    await other.lend(PROXY, first_usable, holder="alive")
    assert await other.release_holder("dead") == 1
    late = await store.give_back(pid, success(pid, clock.now()), tally, holder="dead")
    assert late is not None and late.counters.in_use == 1  # the live holder's lend stands
    assert late.counters.successes == 1 and len(await store.resource_uses(pid)) == 1
    assert await store.resource_holders() == {"alive": 1}
    await other.give_back(pid, success(pid, clock.now()), tally, holder="alive")
    assert await in_use_of(store) == {pid: 0}
    assert await store.resource_holders() == {}


async def test_reset_and_remove_forget_the_resources_holds(
    store: ResourcePools, clock: FakeClock
) -> None:
    p1, p2 = await store.add_resources(proxies(2))
    for resource_id in (p1, p1, p2):
        await store.lend_by(PROXY, RR, sticky_id=resource_id, holder="w1")
    assert await store.reset_resource(p1) is True
    assert await store.resource_holders() == {"w1": 1}
    await store.lend_by(PROXY, RR, sticky_id=p1, holder="w2")
    await store.give_back(p1, success(p1, clock.now()), tally, holder="w1")  # reset meanwhile
    assert await in_use_of(store) == {p1: 1, p2: 1}
    assert await store.remove_resource(p2) is True
    assert await store.resource_holders() == {"w2": 1}
    assert await store.release_holder("w1") == 0
    assert await store.release_holder("w2") == 1
    assert await in_use_of(store) == {p1: 0}


async def test_racing_lends_give_backs_and_a_release_leave_in_use_exact(
    store: ResourcePools, open_more: Opener, clock: FakeClock
) -> None:
    await store.add_resources(proxies(2))
    clients = [store, *[await open_more() for _ in range(3)]]
    kept: dict[int, list[str]] = {}

    async def work(i: int, client: ResourcePools) -> None:
        """10 lends (chooser and strategies in turn) and 5 give backs, interleaved."""
        holder, held = f"w{i % 2}", []
        for n in range(10):
            if n % 3 == 0:
                lent = await client.lend(PROXY, first_usable, holder=holder)
            else:
                lent = await client.lend_by(PROXY, LC if n % 2 else RR, holder=holder)
            assert lent is not None
            held.append(lent.id)
            if n % 2:
                gone = held.pop(0)
                await client.give_back(gone, success(gone, clock.now()), tally, holder=holder)
        kept[i] = held

    await asyncio.gather(*[work(i, c) for i, c in enumerate(clients)])
    assert await store.resource_holders() == {"w0": 10, "w1": 10}

    async def give_back(i: int, count: int) -> None:
        for gone in kept[i][:count]:
            await clients[i].give_back(gone, success(gone, clock.now()), tally, holder=f"w{i % 2}")

    # w0 dies: its release races with its own late give backs and w1's.
    await asyncio.gather(
        clients[1].release_holder("w0"), give_back(0, 5), give_back(2, 5),
        give_back(1, 3), give_back(3, 3),
    )  # fmt: skip
    left = [gone for i in (1, 3) for gone in kept[i][3:]]
    pool = await store.list_resources()
    assert {r.id: r.counters.in_use for r in pool} == {r.id: left.count(r.id) for r in pool}
    assert await store.resource_holders() == {"w1": 4}
    assert sum(r.counters.uses for r in pool) == 40
    assert sum(r.counters.successes for r in pool) == 20 + 16
