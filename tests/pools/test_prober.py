"""The health probe of banned proxies (``[pools] probe_url``) on both store backends, with real
loopback proxies (healthy HTTP and SOCKS5 ones, and the faults: reset, 502, 407, too slow) and
a real origin as the probe URL; the rounds are driven by a FakeClock. A banned proxy whose ban
ends soon is probed through; a healthy one keeps its ban and comes back at its end, a broken
one is banned again for twice as long, once for the whole fleet; a proxy banned for long is
left alone; without a probe URL nothing runs; a probe URL that is not http(s) is a one-line
configuration error."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.config import ConfigError, PoolSettings, load_settings
from hauler.errors import ErrorClass
from hauler.policy import ban
from hauler.pools.prober import Probed, ProbeVerdict, ProxyProber, probing
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState, Strategy, Use
from hauler.store import Store
from tests.fixtures.proxies import ProxyFarm, ProxyMode, proxy_farm
from tests.fixtures.stores import Opener
from tests.transfer.origin import Origin

__all__ = ["proxy_farm"]  # a fixture, imported to be found

EVERY_S = 30.0
LONGEST_ROUND_S = EVERY_S * 1.2  # the interval with the most jitter
FIRST_BAN_S = 3600.0


def settings_for(origin: Origin, **overrides: object) -> PoolSettings:
    """``[pools]`` with the origin's ``health`` file as the probe URL."""
    origin.add("health", 64)
    values: dict[str, object] = {
        "probe_url": origin.url("health"),
        "probe_every_s": EVERY_S,
        "probe_timeout_s": 5.0,
        **overrides,
    }
    return PoolSettings.model_validate(values)


async def banned_proxy(store: Store, clock: FakeClock, url: str) -> Resource:
    """A proxy added and banned the way the pool bans one (3 faults of its own in a row): its
    first ban, ``FIRST_BAN_S`` long."""
    [proxy_id] = await store.add_resources([ResourceSpec(ResourceKind.PROXY, url)])

    def decide(resource: Resource, seen: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
        verdict = ban.decide(resource, seen[-1], seen[:-1], ban.BanRules(), clock.now())
        return verdict.applied_to(resource, clock.now()), verdict.history

    for _ in range(3):
        use = Use(proxy_id, clock.now(), ErrorClass.PROXY.value, is_proxy_fault=True)
        await store.give_back(proxy_id, use, decide)
    stored = await store.get_resource(proxy_id)
    assert stored is not None and stored.state is ResourceState.BANNED
    assert stored.until == clock.now() + FIRST_BAN_S and stored.counters.bans == 1
    return stored


class Rounds:
    """The prober's ``on_round``: each round's results, and a way to run the next one."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.done: asyncio.Queue[list[Probed]] = asyncio.Queue()

    def __call__(self, results: Sequence[Probed]) -> None:
        self.done.put_nowait(list(results))

    async def next(self) -> list[Probed]:
        """Move the clock past the prober's wait and return what that round did."""
        for _ in range(1000):  # the prober's task starts waiting after a few loop turns
            if self.clock.pending():
                break
            await asyncio.sleep(0)
        assert self.clock.pending() == 1, "the prober is not waiting on the clock"
        self.clock.advance(LONGEST_ROUND_S)
        return await asyncio.wait_for(self.done.get(), timeout=30)


async def stored(store: Store, proxy_id: str) -> Resource:
    resource = await store.get_resource(proxy_id)
    assert resource is not None
    return resource


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_healthy_proxy_whose_ban_ends_soon_is_probed_and_comes_back_at_its_end(
    store: Store, clock: FakeClock, origin: Origin, proxy_farm: ProxyFarm, scheme: str
) -> None:
    proxy = await (proxy_farm.http() if scheme == "http" else proxy_farm.socks5())
    banned = await banned_proxy(store, clock, proxy.url)
    clock.advance(FIRST_BAN_S - 50)  # the ban ends in 50 s: within the next two rounds
    rounds = Rounds(clock)
    settings = settings_for(origin)
    async with probing(store, settings, clock, rng=random.Random(3), on_round=rounds) as prober:
        assert prober is not None
        first = await rounds.next()
        assert first == [Probed(banned.id, ProbeVerdict.PASSED, 200, None, banned.until)]
        [seen] = origin.requests_for("health")
        assert proxy_farm.name_of_port(seen.peer_port) == proxy.name  # through that proxy
        if scheme == "http":
            assert seen.headers["via"] == f"1.1 {proxy.name}"
        still = await stored(store, banned.id)
        assert (still.state, still.until, still.counters.bans) == (
            ResourceState.BANNED,
            banned.until,
            1,
        )
        assert await store.lend_by(ResourceKind.PROXY, Strategy.ROUND_ROBIN) is None
        assert await rounds.next() == []  # its ban is over: passed once, not probed again
        assert len(origin.requests_for("health")) == 1
    lent = await store.lend_by(ResourceKind.PROXY, Strategy.ROUND_ROBIN)
    assert lent is not None and lent.id == banned.id
    assert (lent.state, lent.until, lent.counters.bans) == (ResourceState.ACTIVE, None, 1)


@pytest.mark.parametrize(
    "mode", [ProxyMode.RESET, ProxyMode.BAD_GATEWAY, ProxyMode.UNAUTHORIZED, ProxyMode.SLOW]
)
async def test_a_broken_proxy_is_banned_again_for_twice_as_long(
    store: Store, clock: FakeClock, origin: Origin, proxy_farm: ProxyFarm, mode: ProxyMode
) -> None:
    proxy = await proxy_farm.http(mode=mode, delay_s=5.0)
    banned = await banned_proxy(store, clock, proxy.url)
    history = await store.resource_uses(banned.id)
    clock.advance(FIRST_BAN_S - 50)
    rounds = Rounds(clock)
    settings = settings_for(origin, probe_timeout_s=0.3)
    async with probing(store, settings, clock, rng=random.Random(5), on_round=rounds):
        [result] = await rounds.next()
        probed_at = clock.now()
        assert (result.resource_id, result.verdict) == (banned.id, ProbeVerdict.BANNED_AGAIN)
        assert result.until == probed_at + 2 * FIRST_BAN_S
        again = await stored(store, banned.id)
        assert (again.state, again.until) == (ResourceState.BANNED, probed_at + 2 * FIRST_BAN_S)
        assert again.counters.bans == 2  # the next ban after this one: 4 h
        # The probe was no lend: no use counted or kept, nothing left lent.
        assert again.counters.uses == banned.counters.uses and again.counters.in_use == 0
        assert await store.resource_uses(banned.id) == history
        # aiohttp tries an idempotent GET once more on a reset: one probe, up to 2 connections.
        probed_by = proxy.stats.connections
        assert probed_by in (1, 2) and origin.requests_for("health") == []
        assert await rounds.next() == []  # banned for 2 h now: not due
    assert proxy.stats.connections == probed_by
    if mode is ProxyMode.SLOW:
        assert result.status is None and result.reason is not None
        assert "within 0.3 s" in result.reason
    elif mode is ProxyMode.RESET:
        assert result.status is None
    else:
        assert result.status == (502 if mode is ProxyMode.BAD_GATEWAY else 407)


async def test_a_proxy_banned_for_long_is_not_probed(
    store: Store, clock: FakeClock, origin: Origin, proxy_farm: ProxyFarm
) -> None:
    far = await proxy_farm.http()
    banned = await banned_proxy(store, clock, far.url)
    active = await proxy_farm.http()
    await store.add_resources([ResourceSpec(ResourceKind.PROXY, active.url)])
    rounds = Rounds(clock)
    async with probing(store, settings_for(origin), clock, on_round=rounds):
        for _ in range(3):
            assert await rounds.next() == []
    assert far.stats.connections == 0 and active.stats.connections == 0
    assert origin.requests_for("health") == []
    assert (await stored(store, banned.id)).until == banned.until


@pytest.mark.parametrize(
    "pools", [PoolSettings(), PoolSettings(enabled=False, probe_url="http://h/")]
)
async def test_without_a_probe_url_or_the_pools_no_prober_runs(
    store: Store, clock: FakeClock, proxy_farm: ProxyFarm, pools: PoolSettings
) -> None:
    proxy = await proxy_farm.http(mode=ProxyMode.RESET)
    banned = await banned_proxy(store, clock, proxy.url)
    clock.advance(FIRST_BAN_S - 50)
    async with probing(store, pools, clock) as prober:
        assert prober is None
        for _ in range(10):
            await asyncio.sleep(0)
        assert clock.pending() == 0  # nothing waits to probe
        clock.advance(10 * EVERY_S)
    assert proxy.stats.connections == 0
    assert (await stored(store, banned.id)).until == banned.until
    with pytest.raises(ValueError, match="probe_url"):
        ProxyProber(store, PoolSettings())


async def test_two_workers_probing_one_broken_proxy_ban_it_again_once(
    store: Store,
    open_more: Opener,
    clock: FakeClock,
    origin: Origin,
    proxy_farm: ProxyFarm,
) -> None:
    proxy = await proxy_farm.http(mode=ProxyMode.BAD_GATEWAY)
    banned = await banned_proxy(store, clock, proxy.url)
    clock.advance(FIRST_BAN_S - 10)
    settings = settings_for(origin)
    probers = [ProxyProber(store, settings, clock), ProxyProber(await open_more(), settings, clock)]
    try:
        rounds = await asyncio.gather(*(prober.probe_round() for prober in probers))
    finally:
        for prober in probers:
            await prober.aclose()
    verdicts = sorted(result.verdict for results in rounds for result in results)
    # Both probed, or the second listed it banned anew already: either way, one ban.
    assert verdicts in (
        [ProbeVerdict.BANNED_AGAIN, ProbeVerdict.MOVED],
        [ProbeVerdict.BANNED_AGAIN],
    )
    again = await stored(store, banned.id)
    assert again.counters.bans == 2 and again.until == clock.now() + 2 * FIRST_BAN_S


class UnbannedOnceListed:
    """The store, with an operator's ``unban`` landing just after the prober listed the pool
    (while its probe is in flight): a real interleaving, made certain."""

    def __init__(self, store: Store, proxy_id: str) -> None:
        self._store = store
        self._proxy_id = proxy_id

    async def list_resources(self, kind: ResourceKind | None = None) -> list[Resource]:
        listed = await self._store.list_resources(kind)
        assert await self._store.set_resource_state(self._proxy_id, ResourceState.ACTIVE, None)
        return listed

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


async def test_a_proxy_unbanned_during_its_probe_is_left_as_the_operator_set_it(
    store: Store, clock: FakeClock, origin: Origin, proxy_farm: ProxyFarm
) -> None:
    proxy = await proxy_farm.http(mode=ProxyMode.BAD_GATEWAY)
    banned = await banned_proxy(store, clock, proxy.url)
    clock.advance(FIRST_BAN_S - 10)
    pools = UnbannedOnceListed(store, banned.id)
    prober = ProxyProber(pools, settings_for(origin), clock)  # type: ignore[arg-type]
    try:
        [result] = await prober.probe_round()
    finally:
        await prober.aclose()
    assert (result.verdict, result.status) == (ProbeVerdict.MOVED, 502)
    assert proxy.stats.refusals == 1  # it was probed, and failed
    after = await stored(store, banned.id)
    assert (after.state, after.until, after.counters.bans) == (ResourceState.ACTIVE, None, 1)


async def test_probe_results_are_logged_one_line_each_without_credentials(
    store: Store,
    clock: FakeClock,
    origin: Origin,
    proxy_farm: ProxyFarm,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = await proxy_farm.http(credentials=("alice", "s3cret-pass"))
    bad = await proxy_farm.http(credentials=("bob", "0ther-pass"), mode=ProxyMode.UNAUTHORIZED)
    for proxy in (good, bad):
        await banned_proxy(store, clock, proxy.url)
    clock.advance(FIRST_BAN_S - 10)
    prober = ProxyProber(store, settings_for(origin), clock)
    with caplog.at_level(logging.INFO, logger="hauler.pools.prober"):
        try:
            results = await prober.probe_round()
        finally:
            await prober.aclose()
    assert [result.verdict for result in results] == [
        ProbeVerdict.PASSED,
        ProbeVerdict.BANNED_AGAIN,
    ]
    # The probes run at once: their lines come in the order they end.
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "hauler.pools.prober")
    assert len(lines) == 2
    assert "alice:***@" in lines[0] and "passed its probe (200)" in lines[0]
    assert "bob:***@" in lines[1] and "banned again for 7200 s (ban 2)" in lines[1]
    assert "s3cret" not in caplog.text and "0ther" not in caplog.text


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/health", "127.0.0.1:8080/health", "http:///health", "http://h:port/"],
)
def test_a_probe_url_that_is_not_http_is_a_one_line_config_error(tmp_path: Path, url: str) -> None:
    config = tmp_path / "hauler.toml"
    config.write_text(f'[pools]\nprobe_url = "{url}"\n')
    with pytest.raises(ConfigError, match=r"for pools\.probe_url \(from .*accepted: an http") as e:
        load_settings({"HAULER_CONFIG": str(config)})
    assert "\n" not in str(e.value)
    good = load_settings({"HAULER_CONFIG": str(config), "HAULER_POOLS__PROBE_URL": "https://h/x"})
    assert good.pools.probe_url == "https://h/x"


class ProbeLogged(logging.Handler):
    """Sets ``event`` at the prober's first result line (logged on the loop's thread)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


async def test_a_serving_worker_probes_with_a_probe_url(
    store_url: str, origin: Origin, proxy_farm: ProxyFarm, tmp_path: Path
) -> None:
    """``serve`` runs the prober beside the worker (on the real clock: rounds of 50 ms) and stops
    it with the worker. The proxy's ban, set by hand (no ban before it), ends in 0.5 s."""
    from hauler.config import Settings, WorkerSettings
    from hauler.store import open_store
    from hauler.worker.runner import Worker
    from hauler.worker.serve import serve

    proxy = await proxy_farm.http(mode=ProxyMode.RESET)
    pools = settings_for(origin, probe_every_s=0.05, probe_timeout_s=1.0)
    settings = Settings(store=store_url, pools=pools)
    control = await open_store(store_url)
    try:
        [proxy_id] = await control.add_resources([ResourceSpec(ResourceKind.PROXY, proxy.url)])
        assert await control.set_resource_state(proxy_id, ResourceState.BANNED, time.time() + 0.5)
        started: list[Worker] = []
        ws = WorkerSettings(output_dir=tmp_path / "out", poll_s=0.05)
        probed = ProbeLogged()
        logger = logging.getLogger("hauler.pools.prober")
        level = logger.level
        logger.addHandler(probed)
        logger.setLevel(logging.INFO)
        serving = asyncio.create_task(serve(settings, ws, started.append))
        try:
            # The line is logged once the ban is written: within a round or two of 50 ms.
            await asyncio.wait_for(probed.event.wait(), timeout=20)
        finally:
            logger.removeHandler(probed)
            logger.setLevel(level)
            for worker in started:
                worker.request_stop("test over")
            summary = await asyncio.wait_for(serving, timeout=30)
        after = await stored(control, proxy_id)
    finally:
        await control.close()
    assert summary.stopped_by == "test over"
    assert after.state is ResourceState.BANNED and after.counters.bans == 1
    assert after.until is not None and after.until - time.time() > FIRST_BAN_S - 60
    assert proxy.stats.refusals >= 1 and origin.requests_for("health") == []
