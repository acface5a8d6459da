"""Jobs run through the pipeline with the store's pools (``PooledResources``): real loopback
proxies (two healthy, one that refuses its user with 407, one SOCKS5 that fails its tunnels),
accounts sent as cookies (one flagged: the origin answers it with a bot wall). Every job ends
done when it is retried as the worker would; exactly the broken proxies and the flagged account
end banned, and no healthy proxy or account is ever banned, checked after every run."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from hauler.clock import FakeClock
from hauler.errors import HaulerError, NoResource
from hauler.models import JobError, JobKind, JobSpec, JobState
from hauler.pipeline.acquire import PooledResources
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import Outcome
from hauler.pipeline.run import Pipeline
from hauler.pools.lender import PoolLender, PoolRules
from hauler.resources import ResourceKind, ResourceSpec, ResourceState, Strategy
from hauler.store import Store, open_store
from hauler.transfer.engine import Engine
from tests.cli.hauler_process import hauler
from tests.cli.process import HaulerRunner
from tests.fixtures.hostile import HostileOrigin, hostile_origin
from tests.fixtures.proxies import ProxyFarm, ProxyMode, proxy_farm
from tests.worker.fleet import sha256_of, transfer_settings

__all__ = ["hostile_origin", "proxy_farm"]  # fixtures, imported to be found

JOBS = 80
LANES = 6
TRIES = 12


def cookies_of(name: str) -> str:
    """A Netscape cookies file's text with one cookie ``acct=NAME`` for 127.0.0.1."""
    return f"127.0.0.1\tFALSE\t/\tFALSE\t0\tacct\t{name}\n"


async def run_until_done(pipeline: Pipeline, spec: JobSpec, clock: FakeClock) -> Outcome:
    """The job tried again after each failure, as a worker would (a wait is a clock step)."""
    for _ in range(TRIES):
        try:
            return await pipeline.run(spec)
        except NoResource as exc:
            clock.advance(exc.retry_after_s or 1.0)
        except HaulerError:
            clock.advance(1.0)
    raise AssertionError(f"{spec.url} not done in {TRIES} tries")


async def test_jobs_through_the_pools_ban_exactly_the_broken(
    store: Store,
    clock: FakeClock,
    hostile_origin: HostileOrigin,
    proxy_farm: ProxyFarm,
    tmp_path: Path,
) -> None:
    healthy = [await proxy_farm.http(), await proxy_farm.http()]
    refusing = await proxy_farm.http(mode=ProxyMode.UNAUTHORIZED)
    failing = await proxy_farm.socks5(mode=ProxyMode.BAD_GATEWAY)
    proxies = [p.url for p in (*healthy, refusing, failing)]
    await store.add_resources([ResourceSpec(ResourceKind.PROXY, url) for url in proxies])
    names = ["alice", "bob", "mallory"]
    await store.add_resources(
        [ResourceSpec(ResourceKind.ACCOUNT, n, cookies=cookies_of(n)) for n in names]
    )
    hostile_origin.flag_account("mallory")
    by_name = {r.spec.name: r.id for r in await store.list_resources()}
    broken = {by_name[refusing.url], by_name[failing.url], by_name["mallory"]}
    urls = [hostile_origin.add(f"f{n}.bin", 32 * 1024) for n in range(JOBS)]
    lender = PoolLender(store, PoolRules(strategy=Strategy.ROUND_ROBIN), clock=clock)
    out = tmp_path / "out"
    async with Engine(transfer_settings()) as engine:
        pipeline = Pipeline(resolver_for(engine), out, broker=PooledResources(lender))
        queue = list(enumerate(urls))

        async def lane() -> None:
            while queue:
                n, url = queue.pop(0)
                spec = JobSpec(url=url, kind=JobKind.FILE)
                outcome = await asyncio.wait_for(run_until_done(pipeline, spec, clock), 60)
                used = outcome.details["resources"]
                assert used["proxy"] not in broken and used["account"] not in broken
                assert sha256_of(out / f"f{n}.bin") == hostile_origin.sha256(f"f{n}.bin")
                states = await store.list_resources()
                banned = {r.id for r in states if r.state is ResourceState.BANNED}
                assert banned <= broken, banned  # never a healthy one, at any step

        await asyncio.gather(*(lane() for _ in range(LANES)))
    final = {r.id: r for r in await store.list_resources()}
    # Each broken one was banned (a ban may have run out since: waits jump the clock by hours).
    assert {i for i, r in final.items() if r.counters.bans > 0} == broken
    assert all(r.counters.in_use == 0 for r in final.values())
    # The flagged account was refused by the origin; the broken proxies never reached it.
    flagged_requests = [e for e in hostile_origin.log if e.account == "mallory"]
    assert flagged_requests and all(e.status == 403 for e in flagged_requests)
    assert all(e.proxy not in {"proxy-3", "proxy-4"} for e in hostile_origin.log)


async def test_the_result_names_resources_by_id_only(
    store: Store,
    clock: FakeClock,
    hostile_origin: HostileOrigin,
    proxy_farm: ProxyFarm,
    tmp_path: Path,
) -> None:
    secret = "pr0xy-pw"
    proxy = await proxy_farm.http(credentials=("u", secret))
    await store.add_resources([ResourceSpec(ResourceKind.PROXY, proxy.url)])
    await store.add_resources([ResourceSpec(ResourceKind.ACCOUNT, "alice", token="t0ken-secret")])
    url = hostile_origin.add("one.bin", 4096)
    lender = PoolLender(store, clock=clock)
    async with Engine(transfer_settings()) as engine:
        pipeline = Pipeline(resolver_for(engine), tmp_path, broker=PooledResources(lender))
        outcome = await pipeline.run(JobSpec(url=url, kind=JobKind.FILE))
    ids = {r.spec.name: r.id for r in await store.list_resources()}
    assert outcome.details["resources"] == {"proxy": ids[proxy.url], "account": ids["alice"]}
    assert secret not in repr(outcome.details) and "t0ken-secret" not in repr(outcome.details)
    assert proxy.stats.requests == 1


async def test_get_uses_the_pools_of_its_store_unless_told_not_to(
    store_url: str, hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, tmp_path: Path
) -> None:
    proxy = await proxy_farm.http()
    store = await open_store(store_url)
    try:
        await store.add_resources([ResourceSpec(ResourceKind.PROXY, proxy.url)])
        [proxy_id] = [r.id for r in await store.list_resources()]
    finally:
        await store.close()
    url = hostile_origin.add("g.bin", 8192)
    cli = HaulerRunner(cwd=tmp_path, env={"HAULER_STORE": store_url})
    pooled = await cli.run("get", "--json", "-d", "a", url)
    assert pooled.returncode == 0, pooled.stderr
    assert json.loads(pooled.stdout)["files"][0]["resources"]["proxy"] == proxy_id
    direct = await cli.run("get", "--json", "--no-pools", "-d", "b", url)
    assert direct.returncode == 0, direct.stderr
    assert "resources" not in json.loads(direct.stdout)["files"][0]
    assert [e.proxy for e in hostile_origin.log] == ["proxy-1", "direct"]
    assert sha256_of(tmp_path / "b" / "g.bin") == hostile_origin.sha256("g.bin")


async def test_an_unban_wakes_the_jobs_waiting_for_a_resource(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        await store.add_resources([ResourceSpec(ResourceKind.PROXY, "http://127.0.0.1:9")])
        [proxy_id] = [r.id for r in await store.list_resources()]
        await store.set_resource_state(proxy_id, ResourceState.BANNED, time.time() + 3600)
        [job_id] = (await store.add([JobSpec(url="http://127.0.0.1:9/x.bin")])).ids
        (job,) = await store.claim("w1", "n1", 1, 60.0)
        waiting = JobError("no_resource", "no proxy usable now; back in 3600 s", time.time())
        await store.fail(job.id, job.token, waiting, time.time() + 3600, is_counted=False)
    finally:
        await store.close()
    ran = await hauler(store_url, "proxy", "unban", proxy_id)
    assert ran.code == 0, ran.err
    store = await open_store(store_url)
    try:
        woken = await store.get(job_id)
        assert woken is not None and woken.state is JobState.QUEUED  # claimable now
        assert woken.ready_at <= time.time()
    finally:
        await store.close()
