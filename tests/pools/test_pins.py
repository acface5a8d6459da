"""A job's pins (``JobSpec.pools``): proxies of one region only, one account by name or id.
The lender is driven on a real store of each backend with a FakeClock, through both of its
paths (its own chooser while resources are tried out, the store's ``lend_by`` once each has
been used ``EXPLORE_USES`` times); a pinned pool with nothing usable makes the job wait for
it (``NoResource`` saying when it is back), never lends another. ``hauler add --region
--account`` stores the pins in the spec, and ``hauler jobs --json`` shows them."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, cast

import pytest

from hauler.clock import FakeClock
from hauler.errors import NoResource
from hauler.models import JobSpec, PoolPins
from hauler.pipeline.acquire import PooledResources
from hauler.pools.lender import (
    EXPLORE_USES,
    PIN_MISSING_WAIT_S,
    VIEW_S,
    Lent,
    PoolLender,
    PoolRules,
)
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState, Strategy
from hauler.store import Store
from hauler.store.base import Chooser, ResourcePools
from tests.cli.hauler_process import hauler

URL = "http://127.0.0.1:9/f.bin"
SITE = "127.0.0.1"
EU_REGIONS = ("eu", "EU", "Eu")  # one region, whatever case it was added in
LENDS = 60
PROXY, ACCOUNT = ResourceKind.PROXY, ResourceKind.ACCOUNT


class CountedPools:
    """A real store that counts how the lender asked it to lend each kind: by its chooser
    (``lend``) or by a built-in strategy (``lend_by``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[tuple[str, ResourceKind]] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def lend(self, kind: ResourceKind, choose: Chooser) -> Resource | None:
        """The store's ``lend``, counted."""
        self.calls["lend", kind] += 1
        return await self._store.lend(kind, choose)

    async def lend_by(self, kind: ResourceKind, strategy: Strategy, **options: Any) -> Any:
        """The store's ``lend_by``, counted."""
        self.calls["lend_by", kind] += 1
        return await self._store.lend_by(kind, strategy, **options)


def proxy(port: int, region: str | None) -> ResourceSpec:
    return ResourceSpec(ResourceKind.PROXY, f"http://127.0.0.1:{port}", region=region)


async def add_regions(store: Store) -> set[str]:
    """Three proxies in eu, three in us, one of no region; the ids of the eu ones."""
    specs = [proxy(8000 + i, region) for i, region in enumerate(EU_REGIONS)]
    specs += [proxy(8100 + i, "us") for i in range(3)] + [proxy(8200, None)]
    ids = await store.add_resources(specs)
    return set(ids[: len(EU_REGIONS)])


async def add_accounts(store: Store) -> dict[str, str]:
    """Accounts alice, bob and carol (each with a token); their ids by name."""
    names = ["alice", "bob", "carol"]
    specs = [ResourceSpec(ResourceKind.ACCOUNT, n, token=f"tok-{n}") for n in names]
    return dict(zip(names, await store.add_resources(specs), strict=True))


async def lend_and_give_back(
    lender: PoolLender, clock: FakeClock, pins: PoolPins, held: int
) -> list[Lent]:
    """``held`` lends at once, then each given back as a success; the view of the pools is
    read again before the next round (so the lender sees the uses and changes path)."""
    lent = [await lender.lend(URL, SITE, pins) for _ in range(held)]
    for one in lent:
        await lender.give_back(one, SITE, None, 0.05)
    clock.advance(VIEW_S)
    return lent


@pytest.mark.parametrize(
    ("strategy", "held", "is_new_worker"),
    # Round robin: each round a worker of its own (nothing to stick to: the strategy picks);
    # least connections: one worker holding more proxies at once than the region has.
    [(Strategy.ROUND_ROBIN, 1, True), (Strategy.LEAST_CONNECTIONS, 4, False)],
)
async def test_a_region_pin_lends_only_that_regions_proxies_on_both_paths(
    store: Store, clock: FakeClock, strategy: Strategy, held: int, is_new_worker: bool
) -> None:
    eu = await add_regions(store)
    pools = CountedPools(store)
    rules = PoolRules(strategy=strategy)
    lender = PoolLender(cast(ResourcePools, pools), rules, clock=clock)
    pins = PoolPins(region="eu")
    lent: list[Lent] = []
    for _ in range(LENDS // held):
        if is_new_worker:
            lender = PoolLender(cast(ResourcePools, pools), rules, clock=clock)
        lent += await lend_and_give_back(lender, clock, pins, held)
    assert {one.proxy.id for one in lent if one.proxy} == eu
    assert all(one.proxy is not None and one.account is None for one in lent)
    # Each eu proxy was tried out by the chooser, then the store's lend_by took over.
    assert pools.calls["lend", PROXY] >= len(eu) * EXPLORE_USES
    assert pools.calls["lend_by", PROXY] > LENDS // 2
    after = {r.id: r for r in await store.list_resources(ResourceKind.PROXY)}
    assert sum(after[i].counters.uses for i in eu) == len(lent) == LENDS
    if is_new_worker:  # round robin in the region: each its turn
        assert [after[i].counters.uses for i in sorted(eu)] == [LENDS // len(eu)] * len(eu)
    assert all(r.counters.uses == 0 for i, r in after.items() if i not in eu)
    assert all(r.counters.in_use == 0 for r in after.values())


async def test_a_pool_kind_holding_nothing_costs_no_store_call(
    store: Store, clock: FakeClock
) -> None:
    """Proxies but no accounts: every run is lent a proxy and asks the store nothing about
    accounts (the lender knows from its view of the pools, read every few seconds)."""
    await add_regions(store)
    pools = CountedPools(store)
    lender = PoolLender(cast(ResourcePools, pools), clock=clock)
    lent = [
        one for _ in range(10) for one in await lend_and_give_back(lender, clock, PoolPins(), 1)
    ]
    assert all(one.proxy is not None and one.account is None for one in lent)
    assert pools.calls["lend", PROXY] + pools.calls["lend_by", PROXY] == 10
    assert pools.calls["lend", ACCOUNT] == pools.calls["lend_by", ACCOUNT] == 0


async def test_a_region_pin_with_every_proxy_banned_waits_for_the_first_back(
    store: Store, clock: FakeClock
) -> None:
    eu = sorted(await add_regions(store))
    for seconds, proxy_id in zip((700, 400, 900), eu, strict=True):
        await store.set_resource_state(proxy_id, ResourceState.BANNED, clock.now() + seconds)
    lender = PoolLender(store, clock=clock)
    with pytest.raises(NoResource) as waited:
        await lender.lend(URL, SITE, PoolPins(region="EU"))
    assert waited.value.retry_after_s == 400
    assert "no proxy in region EU usable for 127.0.0.1 now" in str(waited.value)
    assert "comes back in 400 s" in str(waited.value)
    clock.advance(400)
    back = await lender.lend(URL, SITE, PoolPins(region="EU"))
    assert back.proxy is not None and back.proxy.id == eu[1]
    assert back.proxy.state is ResourceState.ACTIVE


@pytest.mark.parametrize("by", ["name", "id"])
async def test_an_account_pin_lends_only_that_account(
    store: Store, clock: FakeClock, by: str
) -> None:
    accounts = await add_accounts(store)
    await store.add_resources([proxy(8000, "eu")])
    pools = CountedPools(store)
    lender = PoolLender(cast(ResourcePools, pools), clock=clock)
    pins = PoolPins(account="bob" if by == "name" else accounts["bob"])
    lent: list[Lent] = []
    for _ in range(20):  # well past the tries-out: no lend_by for a pinned account
        lent += await lend_and_give_back(lender, clock, pins, 1)
    assert {one.account.id for one in lent if one.account} == {accounts["bob"]}
    assert all(one.headers == {"Authorization": "Bearer tok-bob"} for one in lent)
    after = {r.spec.name: r.counters.uses for r in await store.list_resources()}
    assert (after["alice"], after["bob"], after["carol"]) == (0, 20, 0)
    # The proxy (not pinned) went to lend_by once tried out; the pinned account never did.
    assert (pools.calls["lend", ACCOUNT], pools.calls["lend_by", ACCOUNT]) == (20, 0)
    assert pools.calls["lend", PROXY] == EXPLORE_USES


async def test_a_banned_pinned_account_waits_for_its_ban_to_end(
    store: Store, clock: FakeClock
) -> None:
    accounts = await add_accounts(store)
    await store.set_resource_state(accounts["bob"], ResourceState.BANNED, clock.now() + 300)
    lender = PoolLender(store, clock=clock)
    with pytest.raises(NoResource) as waited:
        await lender.lend(URL, SITE, PoolPins(account="bob"))
    assert waited.value.retry_after_s == 300
    assert "no account bob usable for 127.0.0.1 now" in str(waited.value)
    assert "comes back in 300 s" in str(waited.value)
    clock.advance(299)
    with pytest.raises(NoResource) as again:
        await lender.lend(URL, SITE, PoolPins(account="bob"))
    assert again.value.retry_after_s == 1
    assert all(r.counters.uses == 0 for r in await store.list_resources())  # none lent instead
    clock.advance(1)
    back = await lender.lend(URL, SITE, PoolPins(account="bob"))
    assert back.account is not None and back.account.id == accounts["bob"]
    assert back.account.state is ResourceState.ACTIVE


@pytest.mark.parametrize(
    ("pins", "named"),
    [
        (PoolPins(region="ap"), "no proxy in region ap is in the pool"),
        (PoolPins(account="zed"), "no account zed is in the pool"),
        (PoolPins(region="eu", account="zed"), "no account zed is in the pool"),
        (PoolPins(region="ap", account="alice"), "no proxy in region ap is in the pool"),
    ],
)
async def test_pins_that_match_nothing_wait_and_lend_nothing_else(
    store: Store, clock: FakeClock, pins: PoolPins, named: str
) -> None:
    await add_regions(store)
    await add_accounts(store)
    lender = PoolLender(store, clock=clock)
    with pytest.raises(NoResource) as waited:
        await lender.lend(URL, SITE, pins)
    assert waited.value.retry_after_s == PIN_MISSING_WAIT_S
    assert named in str(waited.value)
    assert all(r.counters.in_use == 0 for r in await store.list_resources())


async def test_pins_on_empty_pools_wait_instead_of_going_direct(
    store: Store, clock: FakeClock
) -> None:
    lender = PoolLender(store, clock=clock)
    assert await lender.lend(URL, SITE) == Lent(None, None, {})  # no pins: no pools, direct
    with pytest.raises(NoResource) as waited:
        await lender.lend(URL, SITE, PoolPins(region="eu"))
    assert "no proxy in region eu is in the pool" in str(waited.value)
    await store.add_resources([proxy(8000, "eu")])
    clock.advance(1)  # the user added one: the next try finds it (the chooser reads the store)
    lent = await lender.lend(URL, SITE, PoolPins(region="eu"))
    assert lent.proxy is not None and lent.proxy.spec.region == "eu"


async def test_pooled_resources_lend_by_the_specs_pins(store: Store, clock: FakeClock) -> None:
    eu = await add_regions(store)
    accounts = await add_accounts(store)
    broker = PooledResources(PoolLender(store, clock=clock))
    spec = JobSpec(url=URL, pools=PoolPins(region="eu", account=accounts["carol"]))
    for _ in range(8):
        async with broker.acquire(spec) as resources:
            assert resources.proxy_id in eu and resources.account_id == accounts["carol"]
        clock.advance(VIEW_S)
    carol = await store.get_resource(accounts["carol"])
    assert carol is not None
    assert (carol.counters.uses, carol.counters.successes, carol.counters.in_use) == (8, 8, 0)


async def test_add_stores_the_pins_and_jobs_shows_them(store_url: str, store: Store) -> None:
    added = await hauler(store_url, "add", "--region", "eu", "--account", "alice", "--json", URL)
    assert (added.code, added.json()["added"]) == (0, 1), added.err
    line = json.dumps({"url": "http://127.0.0.1:9/g.bin", "pools": {"region": "us"}})
    own = await hauler(store_url, "add", "--region", "eu", "--json", "-", stdin=line + "\n")
    assert (own.code, own.json()["added"]) == (0, 1), own.err
    stored = {job.spec.url: job.spec.pools for job in await store.list_jobs()}
    assert stored == {
        URL: PoolPins(region="eu", account="alice"),
        "http://127.0.0.1:9/g.bin": PoolPins(region="us"),  # a JSON line's own pins
    }
    listed = await hauler(store_url, "jobs", "--json")
    pins = {job["url"]: job["spec"].get("pools") for job in listed.json()}
    assert pins[URL] == {"region": "eu", "account": "alice"}
    blank = await hauler(store_url, "add", "--region", " ", URL)
    assert blank.code == 2 and "--region" in blank.err
