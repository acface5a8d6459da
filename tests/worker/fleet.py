"""Helpers for worker tests: settings with small numbers, running a worker in-process, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from hauler.clock import Clock
from hauler.config import TransferSettings, WorkerSettings
from hauler.models import JobSpec, JobState
from hauler.observe import Observer
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.run import Pipeline
from hauler.store import Store
from hauler.transfer.engine import Engine
from hauler.worker.modes import Mode
from hauler.worker.runner import Identity, Summary, Worker

RUN_TIMEOUT_S = 30.0


def worker_settings(**overrides: Any) -> WorkerSettings:
    """Small leases and polls, fast retries: a worker that reacts in milliseconds."""
    base: dict[str, Any] = {
        "concurrency": 4,
        "lease_s": 5.0,
        "heartbeat_s": 0.1,
        "poll_s": 0.05,
        "grace_s": 5.0,
        "affinity_s": 0.0,
        "retry_base_s": 0.05,
        "retry_cap_s": 0.1,
    }
    return WorkerSettings(**(base | overrides))


def transfer_settings(**overrides: Any) -> TransferSettings:
    """An engine that gives up on a file at once (the worker's retries are under test)."""
    base: dict[str, Any] = {"connections": 2, "segment_retries": 0, "control_flush_s": 0.1}
    return TransferSettings(**(base | overrides))


def sha256_of(path: Path) -> str:
    """The sha256 of a file on disk."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@asynccontextmanager
async def worker_in_process(
    store: Store,
    out_dir: Path,
    mode: Mode,
    name: str = "w1",
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Worker, asyncio.Task[Summary]]]:
    """A worker running as a task of this event loop (on ``clock``, the system's by default);
    stopped (bounded) on exit."""
    async with Engine(transfer_settings()) as engine:
        worker = Worker(
            store,
            pipeline_for(engine, out_dir),
            worker_settings(**overrides),
            mode=mode,
            identity=Identity(name, "node-1", 1),
            clock=clock,
        )
        task = asyncio.create_task(worker.run())
        try:
            yield worker, task
        finally:
            if not task.done():
                worker.request_stop("test over")
            async with asyncio.timeout(RUN_TIMEOUT_S):
                await asyncio.wait([task])


def pipeline_for(engine: Engine, out_dir: Path, observer: Observer | None = None) -> Pipeline:
    """The pipeline a worker's service builds, on ``engine``, into ``out_dir``."""
    return Pipeline(resolver_for(engine), out_dir, observer=observer)


async def drain(store: Store, out_dir: Path, **overrides: Any) -> Summary:
    """Run a drain-mode worker to its end (bounded)."""
    async with worker_in_process(store, out_dir, Mode.DRAIN, **overrides) as (_, task):
        async with asyncio.timeout(RUN_TIMEOUT_S):
            return await task


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Poll ``check`` every 20 ms until true; fail after ``timeout_s`` (bounded)."""
    async with asyncio.timeout(timeout_s):
        for _ in range(int(timeout_s / 0.02) + 1):
            if await check():
                return
            await asyncio.sleep(0.02)
    raise TimeoutError(f"condition not met within {timeout_s}s")


async def add_urls(store: Store, urls: list[str], **spec: Any) -> list[str]:
    """Queue ``urls``; their job ids in order."""
    added = await store.add([JobSpec(url=url, **spec) for url in urls])
    assert added.added == len(urls)
    return added.ids


async def state_of(store: Store, job_id: str) -> JobState:
    """The job's state now."""
    job = await store.get(job_id)
    assert job is not None
    return job.state


# Env for `hauler worker` subprocesses: heartbeats and polls fast, control file flushed often.
FAST_WORKER_ENV = {
    "HAULER_WORKER__HEARTBEAT_S": "0.2",
    "HAULER_WORKER__POLL_S": "0.05",
    "HAULER_WORKER__AFFINITY_S": "0",
    "HAULER_WORKER__RETRY_BASE_S": "0.05",
    "HAULER_WORKER__RETRY_CAP_S": "0.2",
    "HAULER_TRANSFER__CONNECTIONS": "2",
    "HAULER_TRANSFER__CONTROL_FLUSH_S": "0.1",
    "HAULER_TRANSFER__CONTROL_FLUSH_BYTES": str(64 * 1024),
}


async def spawn_worker(
    store_url: str, out_dir: Path, log_dir: Path, *args: str, **env: str
) -> asyncio.subprocess.Process:
    """Start ``hauler worker -o OUT_DIR ARGS`` with its output in ``log_dir``."""
    from tests.cli.hauler_process import HAULER, hauler_env

    log_dir.mkdir(parents=True, exist_ok=True)
    count = len(list(log_dir.glob("*.out")))
    with (
        open(log_dir / f"{count}.out", "wb") as out,
        open(log_dir / f"{count}.err", "wb") as err,
    ):
        return await asyncio.create_subprocess_exec(
            HAULER,
            "--log-level",
            "INFO",
            "worker",
            "-o",
            str(out_dir),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=hauler_env(store_url, **(FAST_WORKER_ENV | env)),
        )


async def wait_exit(proc: asyncio.subprocess.Process, timeout_s: float = 20.0) -> int:
    """The process's exit code, killing it if it has not exited within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


async def stop_workers(workers: list[asyncio.subprocess.Process], timeout_s: float = 30.0) -> None:
    """SIGTERM every worker still running, then wait for each (killed after ``timeout_s``)."""
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        await wait_exit(worker, timeout_s)
