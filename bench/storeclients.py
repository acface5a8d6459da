"""What the store benchmarks (``pool_bench.py``, ``host_bench.py``) share: client processes
that start their timed calls together, the per-call figures of a table row, the store URL of
each row on its backend, and the report file."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures

from tests.fixtures.redis_server import start_redis

OUT_DIR = Path(__file__).resolve().parent / "out"


async def run_clients(
    target: Callable[..., None], args: tuple[Any, ...], clients: int
) -> list[Any]:
    """Start ``clients`` processes of ``target((*args, index), barrier, results)``; each waits
    on ``barrier`` before its timed calls and puts what it measured on ``results``. Their
    puts."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(clients), context.Queue()
    processes = [
        context.Process(target=target, args=((*args, index), barrier, results))
        for index in range(clients)
    ]
    for process in processes:
        process.start()
    parts = [await asyncio.to_thread(results.get, True, 600) for _ in processes]
    for process in processes:
        process.join(60)
    return parts


def ms_columns(values: list[float]) -> str:
    """Mean, p50 and p99 of per-call times (s), in ms, as three table cells."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return " | ".join(
        f"{v * 1000:.3f}" for v in (statistics.fmean(values), statistics.median(ordered), p99)
    )


def store_url(backend: str, tmp: Path, redis_url: str, run: int) -> str:
    """A fresh store for one row: an SQLite file of its own, or a Redis namespace of its own."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'row{run}.db'}"
    return f"{redis_url}?namespace=bench{run}"


def backend_name(backend: str, fsync: str) -> str:
    """The backend as the table names it."""
    return backend if backend == "sqlite" else f"redis ({fsync})"


async def bench_rows(
    prefix: str, fsync: str, rows: Callable[[Path, str], Awaitable[list[str]]]
) -> tuple[list[str], float]:
    """``rows(tmp, redis_url)`` with a redis-server of its own (AOF, ``fsync``) and a temp dir;
    the rows and the load average when they began."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-bench-") as tmp:
        redis = start_redis(Path(tmp) / "redis", fsync=fsync)
        try:
            return await rows(Path(tmp), redis.url), load
        finally:
            redis.stop()


def write_report(prefix: str, header: str, rows: list[str], note: str) -> None:
    """Print the note, write the table and the note to ``bench/out/PREFIX-<UTC stamp>.md``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    print("\n" + note)
    out = OUT_DIR / f"{prefix}-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([header, *rows, "", note, ""]), encoding="utf-8")
    print(f"written to {out}")
