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
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState, Use
from hauler.store import ResourcePools, Store
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
