"""Pool selection cost: ``lend_by`` (and the older ``lend`` with a chooser, for comparison)
and ``give_back`` per call, on SQLite and on Redis.

    python bench/pool_bench.py [--sizes 10 100 1000] [--calls 2000] [--old-calls 400]
                               [--clients 1 4] [--paths lend_by lend] [--fsync everysec]

Starts its own redis-server on a free 127.0.0.1 port (AOF, ``--fsync`` as given) and an SQLite
file in a temp dir. For each backend, pool size, number of clients and path: adds N proxies,
then each client (a process of its own with its own store connection, as workers are; all
start together) loops lend → ``give_back`` (a success counted), timing every call. ``lend_by``
rotates the four strategies call by call (least_connections, round_robin, fastest, weighted
with a drawn value); ``lend`` runs a least-connections chooser over the usable proxies
(``--old-calls`` calls: it is slow). Prints a markdown table of mean, p50 and p99 per call in
ms, the time a ``lend`` spent in its chooser (pure Python over N resources) and the lend →
give_back cycles per second of all the clients together, writes it to
``bench/out/pool-<UTC stamp>.md``, and checks that every proxy ends with ``in_use`` 0 and the
uses and successes adding up to the lends.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for storeclients

from hauler.clock import SystemClock
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState, Strategy, Use
from hauler.store import Store, open_store
from storeclients import (
    backend_name,
    bench_rows,
    ms_columns,
    run_clients,
    store_url,
    write_report,
)


@dataclass
class Timings:
    """Per-call wall times (s) of one run, and the time spent inside the chooser."""

    lend: list[float] = dataclasses.field(default_factory=list)
    give_back: list[float] = dataclasses.field(default_factory=list)
    choose_s: float = 0.0
    choose_calls: int = 0
    started: float = 0.0  # time.time() when the timed calls began, and when they ended
    ended: float = 0.0


def _chooser(timings: Timings):  # type: ignore[no-untyped-def]
    def least_connections(resources: Sequence[Resource], now: float) -> Resource | None:
        started = time.perf_counter()
        usable = [r for r in resources if r.is_usable(now)]
        best = min(usable, key=lambda r: (r.counters.in_use, r.counters.uses), default=None)
        if best is not None and best.state is not ResourceState.ACTIVE:
            best = dataclasses.replace(best, state=ResourceState.ACTIVE, until=None)
        timings.choose_s += time.perf_counter() - started
        timings.choose_calls += 1
        return best

    return least_connections


def _count_success(resource: Resource, history: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
    c = resource.counters
    counters = dataclasses.replace(c, successes=c.successes + 1, latency_s=history[-1].latency_s)
    return dataclasses.replace(resource, counters=counters), history


_WARM_UP = 50  # calls per client before the timed ones

_ROTATION = (
    Strategy.LEAST_CONNECTIONS, Strategy.ROUND_ROBIN, Strategy.FASTEST, Strategy.WEIGHTED,
)  # fmt: skip


async def _lend(store: Store, path: str, i: int, timings: Timings) -> Resource | None:
    if path == "lend":
        return await store.lend(ResourceKind.PROXY, _chooser(timings))
    strategy = _ROTATION[i % len(_ROTATION)]
    return await store.lend_by(ResourceKind.PROXY, strategy, rng_value=random.random())


async def _client_loop(store: Store, path: str, calls: int, timings: Timings) -> None:
    for i in range(calls):
        started = time.perf_counter()
        lent = await _lend(store, path, i, timings)
        timings.lend.append(time.perf_counter() - started)
        assert lent is not None
        use = Use(resource_id=lent.id, at=time.time(), latency_s=0.05, partner="a1")
        started = time.perf_counter()
        await store.give_back(lent.id, use, _count_success)
        timings.give_back.append(time.perf_counter() - started)


def _client_process(job: tuple[str, str, int, int], barrier: Any, results: Any) -> None:
    """One client (``job``: store URL, path, calls, its index): its own store connection,
    warmed up (scripts, caches), then ``calls`` timed lends and give_backs once every client
    is ready."""
    url, path, calls, _ = job

    async def run() -> Timings:
        store = await open_store(url, SystemClock())
        await _client_loop(store, path, _WARM_UP, Timings())
        barrier.wait()
        timings = Timings(started=time.time())
        await _client_loop(store, path, calls, timings)
        timings.ended = time.time()
        await store.close()
        return timings

    results.put(asyncio.run(run()))


async def _run(url: str, path: str, size: int, calls: int, clients: int) -> Timings:
    store = await open_store(url, SystemClock())
    specs = [
        ResourceSpec(kind=ResourceKind.PROXY, name=f"http://u:p@127.0.0.1:{10000 + i}")
        for i in range(size)
    ]
    await store.add_resources(specs)
    parts = await run_clients(_client_process, (url, path, calls), clients)
    timings = Timings(started=min(p.started for p in parts), ended=max(p.ended for p in parts))
    for part in parts:
        timings.lend += part.lend
        timings.give_back += part.give_back
        timings.choose_s += part.choose_s
        timings.choose_calls += part.choose_calls
    pool = await store.list_resources(ResourceKind.PROXY)
    assert all(r.counters.in_use == 0 for r in pool), "a lend was never given back"
    expected = clients * (_WARM_UP + calls)
    assert sum(r.counters.uses for r in pool) == expected, "lost or doubled uses"
    assert sum(r.counters.successes for r in pool) == expected, "lost give_backs"
    await store.close()
    return timings


_HEADER = (
    "| backend | resources | clients | path | lend mean | lend p50 | lend p99 "
    "| give_back mean | give_back p50 | give_back p99 | chooser per lend | cycles/s |\n"
    "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


async def _rows(args: argparse.Namespace, tmp: Path, redis_url: str) -> list[str]:
    rows: list[str] = []
    run = 0
    for backend in args.backends:
        for size in args.sizes:
            for clients in args.clients:
                for path in args.paths:
                    run += 1
                    url = store_url(backend, tmp, redis_url, run)
                    calls = (args.calls if path == "lend_by" else args.old_calls) // clients
                    t = await _run(url, path, size, calls, clients)
                    choose = f"{t.choose_s / t.choose_calls * 1000:.3f}" if t.choose_calls else "-"
                    name = backend_name(backend, args.fsync)
                    rate = len(t.lend) / max(t.ended - t.started, 1e-9)
                    rows.append(
                        f"| {name} | {size} | {clients} | `{path}` | {ms_columns(t.lend)} "
                        f"| {ms_columns(t.give_back)} | {choose} | {rate:,.0f} |"
                    )
                    print(rows[-1], flush=True)
    return rows


async def _main(args: argparse.Namespace) -> None:
    print(_HEADER)
    rows, load = await bench_rows("pool", args.fsync, lambda tmp, url: _rows(args, tmp, url))
    note = (
        f"ms per call, wall time; 'clients' processes at once, each with its own store "
        f"connection; {args.calls} lend_by / {args.old_calls} lend calls a row (all clients); "
        f"load average at start {load:.2f}"
    )
    write_report("pool", _HEADER, rows, note)


def main() -> None:
    """Parse the options and run every combination."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--old-calls", type=int, default=400)
    parser.add_argument("--paths", nargs="+", default=["lend_by", "lend"])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "redis"])
    parser.add_argument("--fsync", default="everysec", choices=["always", "everysec", "no"])
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
