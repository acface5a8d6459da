"""The contract of ``HostBudgets``: limits set, replaced, removed and listed; requests admitted
by rate (a token bucket into debt), connections and cooldowns; the adaptive rate's
compare-and-set; ``hosts_version``; run on SQLite and Redis.

Each test has a store of its own on a FakeClock (fixtures: ``tests/fixtures/stores.py``): a
bucket refills, a slot expires and a cooldown ends because the test moves the clock. The
concurrency tests race several store connections (``open_more``: other workers' views).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from hauler.clock import FakeClock
from hauler.hosts import FREE, Admission, HostBudget, HostLimit, Refusal
from hauler.policy.hostrate import Bucket
from hauler.store.base import CONNECTION_POLL_S, HostBudgets
from tests.fixtures.stores import Opener

HOST = "example.com"
TTL_S = 60.0
_slots = itertools.count()


def slot() -> str:
    return f"s{next(_slots)}"


async def enter(store: HostBudgets, proxy: str | None = None, host: str = HOST) -> Admission:
    return await store.enter_host(host, proxy, slot(), TTL_S)


async def budget(store: HostBudgets, host: str = HOST) -> HostBudget:
    (found,) = [b for b in await store.host_budgets() if b.host == host]
    return found


def approx(values: list[float]) -> object:
    return pytest.approx(values, abs=1e-9)


# --- set, replace, remove, list ---------------------------------------------------------------


async def test_set_replace_remove_and_list(store: HostBudgets, clock: FakeClock) -> None:
    limit = HostLimit("Example.COM.", rate_per_s=5.0, burst=2.0, connections=8)
    await store.set_host_limit(HostLimit("cdn.example.net", connections=2))
    await store.set_host_limit(limit)
    assert [b.host for b in await store.host_budgets()] == ["cdn.example.net", HOST]
    assert await budget(store) == HostBudget(
        host=HOST, limit=limit, rate_per_s=5.0, rate_changed_at=clock.now(),
        cooldown_until=None, proxy_cooldowns={}, in_use=0, requests=0, throttled=0,
    )  # fmt: skip
    assert (await budget(store, "cdn.example.net")).rate_per_s is None
    clock.advance(3)
    replaced = HostLimit(HOST, proxy_rate_per_s=1.0, proxy_connections=2)
    await store.set_host_limit(replaced)
    got = await budget(store)
    assert (got.limit, got.rate_per_s, got.rate_changed_at) == (replaced, None, clock.now())
    assert await store.remove_host_limit("EXAMPLE.com") is True
    assert await store.remove_host_limit(HOST) is False
    assert [b.host for b in await store.host_budgets()] == ["cdn.example.net"]
    assert await enter(store) == FREE


async def test_a_free_host_is_admitted_and_nothing_is_written(store: HostBudgets) -> None:
    await store.set_host_limit(HostLimit("other.org", rate_per_s=1.0, connections=1))
    version = await store.hosts_version()
    for proxy in (None, "127.0.0.1:3128#abc123", None):
        assert await enter(store, proxy) == FREE
    assert FREE.is_admitted and FREE.rate_per_s is None
    await store.leave_host(HOST, None, "s-unknown")
    await store.renew_host_slots(HOST, None, ["s-unknown"], TTL_S)
    assert [b.host for b in await store.host_budgets()] == ["other.org"]
    assert await store.hosts_version() == version
    assert await store.remove_host_limit(HOST) is False


# --- rate -------------------------------------------------------------------------------------


async def test_a_burst_of_one_lends_ahead_and_refills_with_the_clock(
    store: HostBudgets, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=10.0, burst=1.0))
    answers = [await enter(store) for _ in range(20)]
    assert all(a.is_admitted and a.rate_per_s == 10.0 for a in answers)
    assert [a.wait_s for a in answers] == approx([i / 10 for i in range(20)])
    clock.advance(1.0)  # 10 of the 19 tokens owed come in: 9 still owed
    assert (await enter(store)).wait_s == pytest.approx(1.0)
    clock.advance(5.0)  # refills to the burst, no further
    assert [(await enter(store)).wait_s for _ in range(2)] == approx([0.0, 0.1])
    assert (await budget(store)).requests == 23


async def test_a_burst_sends_at_once_then_at_the_rate(store: HostBudgets, clock: FakeClock) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=2.0, burst=4.0))
    assert [(await enter(store)).wait_s for _ in range(6)] == approx([0, 0, 0, 0, 0.5, 1.0])
    clock.advance(100.0)
    assert [(await enter(store)).wait_s for _ in range(5)] == approx([0, 0, 0, 0, 0.5])


async def test_the_bucket_is_hostrate_bucket_to_the_last_bit(
    store: HostBudgets, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=3.0, burst=2.5))
    bucket, waits, expected = Bucket.full(3.0, 2.5, clock.now()), [], []
    for step_s in (0.0, 0.0, 0.0, 0.37, 0.0, 1.13, 0.0, 0.0, 2.9, 0.01):
        clock.advance(step_s)
        bucket, wait_s = bucket.take(clock.now())
        expected.append(wait_s)
        waits.append((await enter(store)).wait_s)
    assert waits == expected  # exactly: the same arithmetic on the same doubles


# --- connections ------------------------------------------------------------------------------


async def test_connections_refuse_the_one_too_many_until_a_leave(
    store: HostBudgets, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit(HOST, connections=2))
    await store.enter_host(HOST, None, "a", TTL_S)
    await store.enter_host(HOST, "p1", "b", TTL_S)
    refused = await store.enter_host(HOST, None, "c", TTL_S)
    assert (refused.refusal, refused.wait_s) == (Refusal.CONNECTIONS, CONNECTION_POLL_S)
    assert not refused.is_admitted
    got = await budget(store)
    assert (got.in_use, got.requests) == (2, 2)  # the refusal took nothing
    await store.leave_host(HOST, "p1", "b")
    assert (await store.enter_host(HOST, None, "c", TTL_S)).is_admitted
    assert (await budget(store)).in_use == 2
    await store.leave_host(HOST, None, "c")
    await store.leave_host(HOST, None, "c")  # twice: ignored
    assert (await budget(store)).in_use == 1


async def test_slots_expire_with_the_clock_and_renewed_ones_stay(
    store: HostBudgets, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit(HOST, connections=2))
    await store.enter_host(HOST, None, "a", 10.0)
    await store.enter_host(HOST, None, "b", 10.0)
    clock.advance(9.98)
    refused = await store.enter_host(HOST, None, "c", 10.0)
    assert refused.refusal is Refusal.CONNECTIONS
    assert refused.wait_s == pytest.approx(0.02)  # sooner than the poll: a slot expires
    await store.renew_host_slots(HOST, None, ["a", "gone"], 10.0)
    clock.advance(0.02)  # b expired, a renewed until 19.98
    assert (await budget(store)).in_use == 1
    assert (await store.enter_host(HOST, None, "c", 10.0)).is_admitted
    assert (await store.enter_host(HOST, None, "d", 10.0)).refusal is Refusal.CONNECTIONS
    clock.advance(10.0)  # a and c expired: renewing them now does nothing
    await store.renew_host_slots(HOST, None, ["a", "c"], 10.0)
    assert (await budget(store)).in_use == 0


async def test_per_proxy_rate_and_connections_are_independent_per_label(
    store: HostBudgets, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit(HOST, proxy_rate_per_s=1.0, proxy_connections=1))
    await store.enter_host(HOST, "p1", "a", TTL_S)
    assert (await enter(store, "p1")).refusal is Refusal.CONNECTIONS
    first_p2 = await store.enter_host(HOST, "p2", "b", TTL_S)
    assert (first_p2.refusal, first_p2.wait_s, first_p2.rate_per_s) == (None, 0.0, None)
    assert [(await enter(store)).wait_s for _ in range(3)] == [0.0, 0.0, 0.0]  # direct: free
    await store.leave_host(HOST, "p1", "a")
    again = await store.enter_host(HOST, "p1", "c", TTL_S)
    assert (again.is_admitted, again.wait_s) == (True, pytest.approx(1.0))  # p1's bucket
    clock.advance(0.25)
    await store.leave_host(HOST, "p2", "b")
    assert (await enter(store, "p2")).wait_s == pytest.approx(0.75)
    got = await budget(store)
    assert (got.in_use, got.requests) == (5, 7)


async def test_host_and_pair_limits_together_take_the_longer_wait(store: HostBudgets) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=4.0, burst=1.0, proxy_rate_per_s=1.0))
    waits = [(await enter(store, "p1")).wait_s for _ in range(3)]
    assert waits == approx([0.0, 1.0, 2.0])  # the pair's bucket is the slower
    assert (await enter(store, "p2")).wait_s == pytest.approx(0.75)  # the host's: 4th token


# --- cooldowns --------------------------------------------------------------------------------


async def test_a_host_cooldown_refuses_everyone(store: HostBudgets, clock: FakeClock) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=1.0, connections=4))
    await store.cool_host(HOST, None, clock.now() + 42)
    for proxy in (None, "p1", "p2"):
        refused = await enter(store, proxy)
        assert (refused.refusal, refused.wait_s) == (Refusal.COOLDOWN, 42.0)
        assert (refused.rate_per_s, refused.rate_changed_at) == (1.0, clock.now())
    got = await budget(store)
    assert (got.cooldown_until, got.requests, got.throttled, got.in_use) == (
        clock.now() + 42, 0, 1, 0,
    )  # fmt: skip
    assert got.cooldown_left_s(clock.now()) == 42.0
    clock.advance(42)
    assert (await enter(store)).is_admitted


async def test_a_pair_cooldown_refuses_only_that_proxy(
    store: HostBudgets, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit(HOST, connections=4))
    now = clock.now()
    await store.cool_host(HOST, "p1", now + 30)
    refused = await enter(store, "p1")
    assert (refused.refusal, refused.wait_s) == (Refusal.COOLDOWN, 30.0)
    assert (await enter(store, "p2")).is_admitted and (await enter(store)).is_admitted
    await store.cool_host(HOST, None, now + 10)  # the later of the two ends
    assert (await enter(store, "p1")).wait_s == 30.0
    assert (await enter(store, "p2")).wait_s == 10.0
    got = await budget(store)
    assert (got.cooldown_until, got.proxy_cooldowns) == (now + 10, {"p1": now + 30})
    assert (got.throttled, got.requests) == (2, 2)
    clock.advance(10)
    assert (await enter(store, "p2")).is_admitted
    assert (await enter(store, "p1")).wait_s == 20.0


async def test_a_cooldown_keeps_the_later_until(store: HostBudgets, clock: FakeClock) -> None:
    now = clock.now()
    for until in (now + 60, now + 10, now + 30):
        await store.cool_host(HOST, None, until)
        await store.cool_host(HOST, "p1", until - 5)
    got = await budget(store)
    assert (got.cooldown_until, got.proxy_cooldowns, got.throttled) == (
        now + 60, {"p1": now + 55}, 6,
    )  # fmt: skip
    await store.cool_host(HOST, None, now + 90)
    assert (await budget(store)).cooldown_until == now + 90


async def test_a_host_without_a_limit_is_listed_while_it_cools(
    store: HostBudgets, clock: FakeClock
) -> None:
    now = clock.now()
    await store.cool_host("quiet.org", None, now + 20)
    await store.cool_host("proxied.org", "p1", now + 5)
    assert await store.host_budgets() == [
        HostBudget("proxied.org", None, None, now, None, {"p1": now + 5}, 0, 0, 1),
        HostBudget("quiet.org", None, None, now, now + 20, {}, 0, 0, 1),
    ]
    assert (await enter(store, "p1", "proxied.org")).wait_s == 5.0
    direct = await enter(store, None, "proxied.org")
    assert (direct.refusal, direct.wait_s, direct.rate_per_s) == (None, 0.0, None)
    assert (await enter(store, "p2", "quiet.org")).refusal is Refusal.COOLDOWN
    clock.advance(5)
    assert [b.host for b in await store.host_budgets()] == ["quiet.org"]
    assert await store.remove_host_limit("proxied.org") is False  # not held any more
    clock.advance(15)
    assert await store.host_budgets() == []
    assert (await enter(store, None, "quiet.org")).is_admitted
    assert await store.remove_host_limit("quiet.org") is False
    await store.cool_host("later.org", None, clock.now() + 1)  # and sweeps proxied.org, over
    assert [b.host for b in await store.host_budgets()] == ["later.org"]
    assert await store.remove_host_limit("later.org") is True


# --- the adaptive rate ------------------------------------------------------------------------


async def test_set_host_rate_is_a_compare_and_set(store: HostBudgets, clock: FakeClock) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=10.0, burst=1.0))
    set_at = clock.now()
    assert [(await enter(store)).wait_s for _ in range(3)] == approx([0.0, 0.1, 0.2])
    clock.advance(0.1)  # one token back at the old rate: 1 owed
    assert await store.set_host_rate(HOST, 5.0, set_at - 1) is False
    assert (await budget(store)).rate_per_s == 10.0
    assert await store.set_host_rate(HOST, 5.0, set_at) is True
    assert await store.set_host_rate(HOST, 2.5, set_at) is False  # it moved: stale
    got = await budget(store)
    assert (got.rate_per_s, got.rate_changed_at) == (5.0, clock.now())
    taken = await enter(store)
    assert (taken.wait_s, taken.rate_per_s) == (pytest.approx(0.4), 5.0)  # 2 owed at 5/s
    assert taken.rate_changed_at == clock.now()
    assert await store.set_host_rate("nowhere.org", 5.0, 0.0) is False
    await store.set_host_limit(HostLimit("slots.org", connections=1))
    assert await store.set_host_rate("slots.org", 5.0, clock.now()) is False
    with pytest.raises(ValueError):
        await store.set_host_rate(HOST, 0.0, clock.now())


async def test_setting_the_limit_again_resets_the_rate_in_force(
    store: HostBudgets, clock: FakeClock
) -> None:
    limit = HostLimit(HOST, rate_per_s=10.0, burst=1.0, connections=5, proxy_rate_per_s=1.0)
    await store.set_host_limit(limit)
    await store.enter_host(HOST, "p1", "a", TTL_S)
    await enter(store, "p1")
    await store.cool_host(HOST, "p2", clock.now() + 100)
    clock.advance(1)
    assert await store.set_host_rate(HOST, 1.0, clock.now() - 1)
    clock.advance(1)
    await store.set_host_limit(limit)
    got = await budget(store)
    assert (got.rate_per_s, got.rate_changed_at) == (10.0, clock.now())
    assert (got.in_use, got.requests, got.throttled) == (2, 2, 1)
    assert got.proxy_cooldowns == {"p2": clock.now() + 98}
    assert [(await enter(store, "p1")).wait_s for _ in range(2)] == approx([0.0, 1.0])


# --- hosts_version and arguments --------------------------------------------------------------


async def test_hosts_version_moves_on_set_remove_and_cool_only(
    store: HostBudgets, clock: FakeClock
) -> None:
    seen = [await store.hosts_version()]

    async def moved() -> bool:
        seen.append(await store.hosts_version())
        return seen[-1] != seen[-2]

    await store.set_host_limit(HostLimit(HOST, rate_per_s=1.0, connections=2))
    assert await moved()
    await store.enter_host(HOST, "p1", "a", TTL_S)
    await store.renew_host_slots(HOST, "p1", ["a"], TTL_S)
    await store.leave_host(HOST, "p1", "a")
    assert await store.set_host_rate(HOST, 0.5, clock.now())
    assert not await moved()
    await store.cool_host(HOST, "p1", clock.now() + 5)
    assert await moved()
    await store.cool_host("other.org", None, clock.now() + 5)
    assert await moved()
    assert await store.remove_host_limit(HOST)
    assert await moved()
    assert not await store.remove_host_limit(HOST)
    assert not await moved()


async def test_bad_arguments_raise_value_error(store: HostBudgets) -> None:
    await store.set_host_limit(HostLimit(HOST, connections=1))
    for ttl_s in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            await store.enter_host(HOST, None, "a", ttl_s)
    with pytest.raises(ValueError):
        await store.cool_host(HOST, None, float("nan"))
    assert (await budget(store)).in_use == 0


# --- concurrency ------------------------------------------------------------------------------


async def test_racing_connections_never_hold_more_than_the_limit(
    store: HostBudgets, open_more: Opener
) -> None:
    await store.set_host_limit(HostLimit(HOST, connections=3))
    stores = [store, *[await open_more() for _ in range(3)]]
    admitted, inside, most, refusals = 0, 0, 0, 0

    async def worker(one: HostBudgets) -> None:
        nonlocal admitted, inside, most, refusals
        while admitted < 200:
            name = slot()
            answer = await one.enter_host(HOST, None, name, TTL_S)
            if not answer.is_admitted:
                assert answer.refusal is Refusal.CONNECTIONS
                refusals += 1
                await asyncio.sleep(0)  # yield only: the FakeClock does not move
                continue
            admitted, inside = admitted + 1, inside + 1
            most = max(most, inside)
            await one.hosts_version()  # hold it for a round trip: the others race meanwhile
            inside -= 1
            await one.leave_host(HOST, None, name)

    await asyncio.gather(*[worker(stores[i % 4]) for i in range(8)])
    got = await budget(store)
    assert most == 3 and refusals > 0  # the limit is reached, never passed
    assert (got.in_use, got.requests) == (0, admitted)


async def test_racing_connections_get_strictly_spaced_waits(
    store: HostBudgets, open_more: Opener
) -> None:
    await store.set_host_limit(HostLimit(HOST, rate_per_s=10.0, burst=1.0))
    stores = [store, *[await open_more() for _ in range(3)]]
    answers = await asyncio.gather(*[enter(stores[i % 4], f"p{i % 3}") for i in range(40)])
    waits = sorted(a.wait_s for a in answers)
    assert len(set(waits)) == 40
    assert waits == approx([i / 10 for i in range(40)])
