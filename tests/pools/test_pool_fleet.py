"""The pools across a fleet, as the issue's first "Done when" names it: 5 proxies (2 broken: one
refuses its users with 407, one SOCKS5 fails every tunnel), 6 accounts (2 flagged: the origin
answers them with a bot wall), 300 jobs over 3 `hauler worker` processes sharing one store.
Every job completes; exactly the broken proxies and the flagged accounts are banned; no healthy
proxy or account is ever banned, watched in the store every 50 ms while the fleet works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hauler.models import JobKind, JobSpec, JobState
from hauler.resources import ResourceKind, ResourceSpec, ResourceState
from hauler.store import Store, open_store
from tests.fixtures.hostile import HostileOrigin, hostile_origin
from tests.fixtures.proxies import ProxyFarm, ProxyMode, proxy_farm
from tests.worker.fleet import sha256_of, spawn_worker, stop_workers

__all__ = ["hostile_origin", "proxy_farm"]  # fixtures, imported to be found

JOBS = 300
WORKERS = 3
ENV = {
    # Rests and bans of real minutes would outlast the test: uses enough for 300 jobs.
    "HAULER_POOLS__ACCOUNT_REST_USES": "1000",
    "HAULER_POOLS__STRATEGY": "round_robin",
}


def cookies_of(name: str) -> str:
    return f"127.0.0.1\tFALSE\t/\tFALSE\t0\tacct\t{name}\n"


@pytest.mark.slow
async def test_300_jobs_over_3_workers_ban_exactly_the_broken(
    store_url: str, hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, tmp_path: Path
) -> None:
    healthy = [await proxy_farm.http() for _ in range(2)] + [await proxy_farm.socks5()]
    refusing = await proxy_farm.http(mode=ProxyMode.UNAUTHORIZED)
    failing = await proxy_farm.socks5(mode=ProxyMode.BAD_GATEWAY)
    names = ["ann", "ben", "cat", "dan", "eve", "fay"]
    hostile_origin.flag_account("eve", "fay")
    urls = [hostile_origin.add(f"f{n}.bin", 16 * 1024) for n in range(JOBS)]
    store = await open_store(store_url)
    try:
        proxies = [p.url for p in (*healthy, refusing, failing)]
        await store.add_resources([ResourceSpec(ResourceKind.PROXY, url) for url in proxies])
        await store.add_resources(
            [ResourceSpec(ResourceKind.ACCOUNT, n, cookies=cookies_of(n)) for n in names]
        )
        ids = {r.spec.name: r.id for r in await store.list_resources()}
        broken = {ids[refusing.url], ids[failing.url], ids["eve"], ids["fay"]}
        specs = [JobSpec(url=url, kind=JobKind.FILE, max_attempts=10) for url in urls]
        job_ids = (await store.add(specs)).ids
        out = tmp_path / "out"
        workers = [
            await spawn_worker(store_url, out, tmp_path / "logs", "-j", "4", **ENV)
            for _ in range(WORKERS)
        ]
        try:
            ever_banned = await _watch_until_done(store, job_ids, broken)
        finally:
            await stop_workers(workers)
        final = {r.id: r for r in await store.list_resources()}
    finally:
        await store.close()
    assert ever_banned == broken
    assert {i for i, r in final.items() if r.state is ResourceState.BANNED} == broken
    assert all(r.counters.in_use == 0 for r in final.values())
    for n in range(JOBS):
        assert sha256_of(out / f"f{n}.bin") == hostile_origin.sha256(f"f{n}.bin")
    # The broken proxies never reached the origin; the flagged accounts never got a file.
    assert {e.status for e in hostile_origin.log if e.account in {"eve", "fay"}} == {403}
    served = {e.proxy for e in hostile_origin.log if e.status in {200, 206}}
    assert served and not served & {"proxy-4", "proxy-5"}


async def _watch_until_done(store: Store, job_ids: list[str], broken: set[str]) -> set[str]:
    """Every 50 ms: no healthy resource banned (else fail at once); return the resources seen
    banned once every job is done (bounded: 120 s)."""
    ever: set[str] = set()
    async with asyncio.timeout(120):
        while True:
            resources = await store.list_resources()
            banned = {r.id for r in resources if r.state is ResourceState.BANNED}
            assert banned <= broken, f"a healthy resource was banned: {banned - broken}"
            ever |= banned
            counts = await store.counts()
            if counts.get(JobState.DONE, 0) == len(job_ids):
                return ever
            assert counts.get(JobState.FAILED, 0) == 0, "a job failed"
            await asyncio.sleep(0.05)
