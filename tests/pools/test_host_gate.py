"""``HostGate``: requests held to the store's per-host budgets, on both backends, on a FakeClock
shared by the store and the gate (a second gate over another store connection is another
worker). The end of the file runs real downloads through an ``Engine`` with the gate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.config import HostSettings, TransferSettings
from hauler.errors import Throttled
from hauler.hosts import HostLimit
from hauler.net import proxy_label
from hauler.pools.hostgate import HostGate
from hauler.store import Store
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.stores import Opener
from tests.transfer.origin import Fault, Origin
from tests.worker.fleet import sha256_of

SETTINGS = HostSettings(refresh_s=0.5, slot_ttl_s=30.0, max_wait_s=30.0)


@pytest.fixture
async def gate(store: Store, clock: FakeClock) -> HostGate:
    return HostGate(store, SETTINGS, clock)


async def test_a_host_the_store_holds_nothing_for_goes_at_once_and_writes_nothing(
    gate: HostGate, store: Store, clock: FakeClock
) -> None:
    version = await store.hosts_version()
    started = clock.monotonic()
    for _ in range(20):
        (await gate.enter("http://free.test/a", None)).close()
    assert clock.monotonic() == started
    assert await store.host_budgets() == []
    assert await store.hosts_version() == version


async def test_a_limited_rate_spaces_the_requests_of_its_subdomains(
    gate: HostGate, store: Store, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit("example.test", rate_per_s=10.0))
    began = clock.monotonic()
    sent = []
    for n in range(5):
        ticket = await gate.enter(f"http://cdn{n % 2}.example.test/f", None)
        sent.append(round(clock.monotonic() - began, 6))
        ticket.close()
    assert sent == [0.0, 0.1, 0.2, 0.3, 0.4]
    await gate.aclose()
    (budget,) = await store.host_budgets()
    assert (budget.host, budget.requests, budget.in_use) == ("example.test", 5, 0)


async def test_a_retry_after_cools_the_host_for_every_worker(
    gate: HostGate, store: Store, clock: FakeClock, open_more: Opener
) -> None:
    await store.set_host_limit(HostLimit("example.test", rate_per_s=100.0))
    clock.advance(2.0)  # a 429 right after a change is the same overload: not halved again
    other = HostGate(await open_more(), SETTINGS, clock)
    ticket = await gate.enter("http://example.test/a", None)
    await ticket.throttled(5.0)
    ticket.close()
    began = clock.monotonic()
    (await other.enter("http://example.test/b", None)).close()
    assert clock.monotonic() - began == pytest.approx(5.0, abs=0.011)
    (await gate.enter("http://example.test/c", None)).close()
    # The next token: at the halved rate (50/s), 20 ms on.
    assert clock.monotonic() - began == pytest.approx(5.02, abs=0.005)
    await gate.aclose()
    await other.aclose()
    (budget,) = await store.host_budgets()
    assert budget.throttled == 1
    assert budget.rate_per_s == pytest.approx(50.0)  # halved by the 429


async def test_a_throttled_host_without_a_limit_cools_once_the_others_look(
    gate: HostGate, store: Store, clock: FakeClock, open_more: Opener
) -> None:
    other = HostGate(await open_more(), SETTINGS, clock)
    (await other.enter("http://free.test/warm", None)).close()  # its view is fresh
    ticket = await gate.enter("http://free.test/a", None)
    await ticket.throttled(3.0)
    ticket.close()
    (budget,) = await store.host_budgets()
    assert (budget.host, budget.limit) == ("free.test", None)
    assert budget.cooldown_left_s(clock.now()) == pytest.approx(3.0)
    clock.advance(SETTINGS.refresh_s)  # the other worker's next look at the store
    began = clock.monotonic()
    (await other.enter("http://free.test/b", None)).close()
    assert clock.monotonic() - began == pytest.approx(2.5, abs=0.011)
    clock.advance(1.0)
    assert await store.host_budgets() == []  # over: no longer listed


async def test_a_throttled_proxy_cools_only_on_its_own(
    gate: HostGate, store: Store, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit("example.test", rate_per_s=100.0))
    tired, fresh = "http://user:secret@127.0.0.1:3128", "http://127.0.0.1:3129"
    ticket = await gate.enter("http://example.test/a", tired)
    await ticket.throttled(10.0)
    ticket.close()
    began = clock.monotonic()
    (await gate.enter("http://example.test/b", fresh)).close()
    (await gate.enter("http://example.test/c", None)).close()
    assert clock.monotonic() - began < 0.05
    (budget,) = await store.host_budgets()
    assert set(budget.proxy_cooldowns) == {proxy_label(tired)}
    assert "secret" not in repr(budget)
    (await gate.enter("http://example.test/d", tired)).close()
    assert clock.monotonic() - began == pytest.approx(10.0, abs=0.011)


async def test_a_cooldown_longer_than_a_lane_should_wait_sends_the_job_back(
    gate: HostGate, store: Store, clock: FakeClock
) -> None:
    await store.cool_host("example.test", None, clock.now() + 600.0)
    began = clock.monotonic()
    with pytest.raises(Throttled) as caught:
        await gate.enter("http://example.test/a", None)
    assert caught.value.retry_after_s == pytest.approx(600.0)
    assert "cooling down" in caught.value.message
    assert clock.monotonic() == began


async def test_the_connection_limit_holds_a_request_until_a_body_ends(
    gate: HostGate, store: Store, clock: FakeClock
) -> None:
    await store.set_host_limit(HostLimit("example.test", connections=1))
    first = await gate.enter("http://example.test/a", None)
    second = asyncio.create_task(gate.enter("http://example.test/b", None))
    await asyncio.sleep(0.2)  # real time: the second polls the store, in vain
    assert not second.done()
    (budget,) = await store.host_budgets()
    assert budget.in_use == 1
    first.close()
    async with asyncio.timeout(5):
        (await second).close()
    await gate.aclose()
    (budget,) = await store.host_budgets()
    assert budget.in_use == 0


async def test_downloads_through_the_engine_keep_to_the_connection_limit(
    store: Store, origin: Origin, tmp_path: Path, clock: FakeClock
) -> None:
    """Real downloads (4 files of 4 connections each, at once) against a host limited to 2
    connections: the origin never sends more than 2 answers at once, every file is exact,
    and every slot is given back."""
    del clock  # the engine runs in real time; the store's clock only stamps the slots
    await store.set_host_limit(HostLimit("127.0.0.1", connections=2))
    gate = HostGate(store, SETTINGS)
    names = [f"f{n}.bin" for n in range(4)]
    for name in names:
        origin.add(name, 2 * 1024 * 1024, rate_bps=4 * 1024 * 1024)
    settings = TransferSettings(connections=4, min_split_bytes=256 * 1024)
    async with Engine(settings, gate=gate) as engine:
        requests = [TransferRequest(origin.url(n), tmp_path, connections=4) for n in names]
        async with asyncio.timeout(60):
            await asyncio.gather(*(engine.download(r) for r in requests))
    await gate.aclose()
    # Without the limit the origin sends 16 at once; with it, 2 (an answer's last 50 ms, the
    # slice the origin sends after the client let go, not counted).
    assert origin.most_at_once(tail_s=0.1) == 2
    for name in names:
        assert sha256_of(tmp_path / name) == origin.sha256(name)
    (budget,) = await store.host_budgets()
    assert budget.in_use == 0


async def test_a_429_with_retry_after_through_the_engine_cools_the_host(
    store: Store, origin: Origin, tmp_path: Path, clock: FakeClock
) -> None:
    origin.add("f.bin", 1024, faults={1: Fault(status=429, retry_after="7")})
    gate = HostGate(store, SETTINGS, clock)
    settings = TransferSettings(segment_retries=0)
    async with Engine(settings, gate=gate) as engine:
        with pytest.raises(Throttled):
            await engine.download(TransferRequest(origin.url("f.bin"), tmp_path))
    await gate.aclose()
    (budget,) = await store.host_budgets()
    assert budget.host == "127.0.0.1"
    assert budget.cooldown_left_s(clock.now()) == pytest.approx(7.0)


async def test_a_store_that_cannot_answer_lets_requests_go_with_one_warning(
    dedicated_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Budgets are manners: with the store down, a request to a limited host goes at once
    (the worker's claims fail by themselves meanwhile), and the log says so once."""
    from hauler.store import open_store

    clock = FakeClock()
    store = await open_store(f"{dedicated_redis.url}?namespace=gate", clock)
    try:
        await store.set_host_limit(HostLimit("example.test", rate_per_s=0.001))
        gate = HostGate(store, SETTINGS, clock)
        (await gate.enter("http://example.test/a", None)).close()  # the bucket's one token
        dedicated_redis.kill()
        clock.advance(SETTINGS.refresh_s)  # the next request asks the store again
        for _ in range(3):
            async with asyncio.timeout(30):
                (await gate.enter("http://example.test/b", None)).close()
        warnings = [r for r in caplog.records if "host budgets not kept" in r.getMessage()]
        assert len(warnings) == 1
        await gate.aclose()
    finally:
        await store.close()
