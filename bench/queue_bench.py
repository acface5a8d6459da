"""Queue throughput: add → claim → complete, on SQLite and on Redis (AOF everysec and always).

    python bench/queue_bench.py [--jobs 20000] [--processes 1 4]

Starts its own redis-servers on free 127.0.0.1 ports and an SQLite file in a temp dir. For each
backend and process count: adds N jobs in batches (one process), then P worker processes loop
``claim(64)`` → ``complete(batch)`` with an instant fetcher until the queue is empty. Prints a
markdown table (with the CPU time per job of the worker processes and of redis-server, which
says more than jobs/s on a busy machine) and checks that every job ended ``done`` exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures

from tests.fixtures.redis_server import RedisServer, start_redis

from hauler.clock import SystemClock
from hauler.models import JobSpec, JobState
from hauler.store import Completion, JobFilter, Store, open_store

ADD_BATCH = 1000
CLAIM_BATCH = 64
LEASE_S = 600.0  # no lease may expire during a run: a reclaim would be a second claim


@dataclass(frozen=True)
class Row:
    """One line of the report."""

    backend: str
    processes: int
    add_per_s: float
    drain_per_s: float
    client_cpu_us: float
    server_cpu_us: float | None
    is_exact: bool


@dataclass(frozen=True)
class WorkerReport:
    """What one worker process did."""

    ids: list[str]
    lost: int
    started: float
    finished: float
    cpu_s: float


async def _drain(url: str, name: str, start: mp.synchronize.Event) -> WorkerReport:
    store = await open_store(url, SystemClock())
    ids: list[str] = []
    lost = 0
    start.wait()
    started, cpu_started = time.monotonic(), time.process_time()
    while jobs := await store.claim(name, f"node-{name}", CLAIM_BATCH, LEASE_S, 0.0):
        # The instant fetcher: every job succeeds at once.
        lost += len(await store.complete([Completion(j.id, j.token, {"ok": 1}) for j in jobs]))
        ids += [j.id for j in jobs]
    finished, cpu_s = time.monotonic(), time.process_time() - cpu_started
    await store.close()
    return WorkerReport(ids, lost, started, finished, cpu_s)


def _worker(url: str, name: str, start: mp.synchronize.Event, out: mp.Queue[WorkerReport]) -> None:
    out.put(asyncio.run(_drain(url, name, start)))


async def _add_all(url: str, n_jobs: int) -> float:
    store = await open_store(url, SystemClock())
    specs = [JobSpec(url=f"http://127.0.0.1/bench/{i}") for i in range(n_jobs)]
    began = time.monotonic()
    for i in range(0, n_jobs, ADD_BATCH):
        result = await store.add(specs[i : i + ADD_BATCH])
        assert result.added == len(specs[i : i + ADD_BATCH]), "bench jobs must be new"
    elapsed = time.monotonic() - began
    await store.close()
    return n_jobs / elapsed


async def _check(url: str, n_jobs: int, reports: list[WorkerReport]) -> bool:
    store: Store = await open_store(url, SystemClock())
    counts = await store.counts()
    done = len(await store.list_jobs(JobFilter(state=JobState.DONE)))
    await store.close()
    ids = [i for r in reports for i in r.ids]
    return (
        len(ids) == len(set(ids)) == n_jobs
        and sum(r.lost for r in reports) == 0
        and counts[JobState.DONE] == done == n_jobs
        and sum(counts.values()) == n_jobs
    )


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(
    backend: str, url: str, n_jobs: int, processes: int, server_pid: int | None = None
) -> Row:
    """Add ``n_jobs`` to the empty store at ``url``, drain them with ``processes`` workers."""
    add_per_s = asyncio.run(_add_all(url, n_jobs))
    server_cpu_before = _cpu_s(server_pid)
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, f"w{i}", start, out)) for i in range(processes)]
    for proc in procs:
        proc.start()
    start.set()
    reports = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    span = max(r.finished for r in reports) - min(r.started for r in reports)
    server_cpu_us = (_cpu_s(server_pid) - server_cpu_before) / n_jobs * 1e6
    client_cpu_us = sum(r.cpu_s for r in reports) / n_jobs * 1e6
    is_exact = asyncio.run(_check(url, n_jobs, reports))
    return Row(
        backend,
        processes,
        add_per_s,
        n_jobs / span,
        client_cpu_us,
        server_cpu_us if server_pid else None,
        is_exact,
    )


def print_table(rows: list[Row]) -> None:
    """The report, as a markdown table."""
    print(
        "| backend | processes | jobs/s add | jobs/s claim+complete "
        "| worker CPU µs/job | redis-server CPU µs/job | every job done once |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        exact = "yes" if r.is_exact else "**NO**"
        server = "" if r.server_cpu_us is None else f"{r.server_cpu_us:,.0f}"
        print(
            f"| {r.backend} | {r.processes} | {r.add_per_s:,.0f} | {r.drain_per_s:,.0f} "
            f"| {r.client_cpu_us:,.0f} | {server} | {exact} |"
        )


def main() -> int:
    """Run every backend and process count; exit 1 if any job was lost or done twice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hauler-queue-bench-") as tmp:
        servers: dict[str, RedisServer] = {
            fsync: start_redis(Path(tmp) / f"redis-{fsync}", fsync=fsync)
            for fsync in ("everysec", "always")
        }
        try:
            for processes in args.processes:
                url = f"sqlite:///{tmp}/sqlite-{processes}/jobs.db"
                rows.append(run_one("sqlite", url, args.jobs, processes))
                for fsync, server in servers.items():
                    url = f"{server.url}?namespace=bench-{processes}"
                    name = f"redis (AOF {fsync})"
                    rows.append(run_one(name, url, args.jobs, processes, server.pid))
        finally:
            for server in servers.values():
                server.stop()
    print_table(rows)
    return 0 if all(r.is_exact for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
