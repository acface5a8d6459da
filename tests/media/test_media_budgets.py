"""A media job's extraction passes the engine's request gate like its downloads: a cooldown on
the page's host (a 429 another worker met) holds yt-dlp's requests until it ends, and the
store counts the extraction as one of the host's requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hauler.clock import SystemClock
from hauler.config import HostSettings
from hauler.hosts import HostLimit
from hauler.models import JobKind, JobSpec
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.run import Pipeline
from hauler.pools.hostgate import HostGate
from hauler.store import open_store
from tests.media.library import MediaLibrary
from tests.media.site import MediaSite
from tests.worker.fleet import sha256_of, transfer_settings

COOLDOWN_S = 1.5


async def test_a_cooling_host_holds_the_extraction(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    from hauler.transfer.engine import Engine

    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}", SystemClock())
    gate = HostGate(store, HostSettings())
    try:
        await store.set_host_limit(HostLimit("127.0.0.1", rate_per_s=1000.0, burst=100.0))
        await store.cool_host("127.0.0.1", None, time.time() + COOLDOWN_S)
        out = tmp_path / "out"
        async with Engine(transfer_settings(), gate=gate) as engine:
            spec = JobSpec(url=site.url("/video.html"), kind=JobKind.MEDIA)
            job = asyncio.create_task(Pipeline(resolver_for(engine), out).run(spec))
            await asyncio.sleep(COOLDOWN_S - 0.5)
            assert site.requests == [] and not job.done()  # not even the page, while it cools
            async with asyncio.timeout(60):
                outcome = await job
        await gate.aclose()
        (budget,) = await store.host_budgets()
    finally:
        await store.close()
    assert sha256_of(outcome.primary.path) == library.direct.sha256
    # The extraction (one request for the gate) and the download of the one direct format.
    assert budget.requests == 2 and budget.in_use == 0
    assert site.count("/video.html") >= 1
