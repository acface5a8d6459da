"""``[pools] on_bannable``: what a bot wall does to the job and the lane that met it, with the
store's pools (two accounts, both flagged: the hostile origin answers each with a bot wall) and
the origin counting the requests that reached it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hauler.errors import BotCheck, HaulerError, NoResource
from hauler.models import JobKind, JobSpec, JobState
from hauler.pipeline.acquire import PooledResources
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.run import OnBannable, Pipeline
from hauler.pools.lender import PoolLender, PoolRules
from hauler.resources import ResourceKind, ResourceSpec
from hauler.store import Store
from hauler.transfer.engine import Engine
from hauler.worker.modes import Mode
from hauler.worker.runner import Worker
from tests.fixtures.hostile import HostileOrigin, hostile_origin
from tests.worker.fleet import transfer_settings, worker_settings

__all__ = ["hostile_origin"]  # a fixture, imported to be found

RULES = PoolRules()


async def _flagged_accounts(store: Store, origin: HostileOrigin) -> None:
    names = ["eve", "fay"]
    cookies = {n: f"127.0.0.1\tFALSE\t/\tFALSE\t0\tacct\t{n}\n" for n in names}
    await store.add_resources(
        [ResourceSpec(ResourceKind.ACCOUNT, n, cookies=cookies[n]) for n in names]
    )
    origin.flag_account(*names)


def _pipeline(engine: Engine, store: Store, out: Path, on_bannable: OnBannable) -> Pipeline:
    broker = PooledResources(PoolLender(store, RULES))
    return Pipeline(resolver_for(engine), out, broker=broker, on_bannable=on_bannable)


@pytest.mark.parametrize(
    ("on_bannable", "expected"),
    [("retry_other", (NoResource, 2)), ("fail", (BotCheck, 1))],
)
async def test_a_bot_wall_is_tried_again_with_other_accounts_or_not(
    store: Store,
    hostile_origin: HostileOrigin,
    tmp_path: Path,
    on_bannable: OnBannable,
    expected: tuple[type[HaulerError], int],
) -> None:
    """retry_other: the refused account is banned (no proxy to blame) and the other tried at
    once, then none is left (the job waits); fail: the first refusal is the attempt's end."""
    error, requests = expected
    await _flagged_accounts(store, hostile_origin)
    url = hostile_origin.add("f.bin", 1024)
    async with Engine(transfer_settings()) as engine:
        pipeline = _pipeline(engine, store, tmp_path, on_bannable)
        with pytest.raises(error):
            await pipeline.run(JobSpec(url=url, kind=JobKind.FILE))
    assert hostile_origin.statuses() == [403] * requests
    assert len({e.account for e in hostile_origin.log}) == requests


async def test_stop_lane_stops_each_lane_that_meets_a_bot_wall_then_the_worker(
    store: Store, hostile_origin: HostileOrigin, tmp_path: Path
) -> None:
    await _flagged_accounts(store, hostile_origin)
    urls = [hostile_origin.add(f"f{n}.bin", 1024) for n in range(6)]
    await store.add([JobSpec(url=u, kind=JobKind.FILE, max_attempts=10) for u in urls])
    async with Engine(transfer_settings()) as engine:
        pipeline = _pipeline(engine, store, tmp_path, "stop_lane")
        worker = Worker(
            store, pipeline, worker_settings(concurrency=2, claim_batch=1), mode=Mode.FOREVER
        )
        async with asyncio.timeout(20):
            summary = await worker.run()
    assert summary.stopped_by == "every lane stopped on a bannable failure"
    # One refusal per lane, and nothing more claimed: the jobs wait for another worker.
    assert hostile_origin.statuses() == [403, 403]
    counts = await store.counts()
    assert counts.get(JobState.DONE, 0) == 0
    assert counts.get(JobState.RETRYING, 0) + counts.get(JobState.QUEUED, 0) == len(urls)
