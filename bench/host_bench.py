"""Host budget cost: ``enter_host`` and ``leave_host`` per call, on SQLite and on Redis.

    python bench/host_bench.py [--calls 2000] [--clients 1 3] [--paths free direct proxy]
                               [--backends sqlite redis] [--fsync everysec]

Starts its own redis-server on a free 127.0.0.1 port (AOF, ``--fsync`` as given) and an SQLite
file in a temp dir. For each backend, number of clients and path, each client (a process of its
own with its own store connection, as workers are; all start together) loops ``enter_host`` →
``leave_host`` on one host, timing every call:

- ``free``: a host the store holds nothing for (the path of most requests);
- ``direct``: a host with a rate, burst and connection limit, no proxy;
- ``proxy``: the same host through one of 4 proxy labels, with per-proxy rate and connection
  limits too (the longest path: host and pair slots, both buckets).

The limits are high enough that every request is admitted (the bench measures the store, not
the waits: nobody sleeps the ``wait_s``). Prints a markdown table of mean, p50 and p99 per call
in ms and the enter → leave cycles per second of all the clients together, writes it to
``bench/out/host-<UTC stamp>.md``, and checks that the host ends with no slot held and its
``requests`` equal to the admissions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for storeclients

from hauler.clock import SystemClock
from hauler.hosts import HostLimit
from hauler.store import Store, open_store
from storeclients import (
    backend_name,
    bench_rows,
    ms_columns,
    run_clients,
    store_url,
    write_report,
)

HOST = "bench.example"
FREE_HOST = "free.example"
LIMIT = HostLimit(
    HOST, rate_per_s=1e6, burst=1e6, connections=10_000,
    proxy_rate_per_s=1e6, proxy_connections=10_000,
)  # fmt: skip
_WARM_UP = 50  # calls per client before the timed ones
_LABELS = 4


@dataclass
class Timings:
    """Per-call wall times (s) of one run, and when its timed calls began and ended."""

    enter: list[float] = dataclasses.field(default_factory=list)
    leave: list[float] = dataclasses.field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0


async def _client_loop(store: Store, path: str, calls: int, name: str, t: Timings) -> None:
    host = FREE_HOST if path == "free" else HOST
    for i in range(calls):
        proxy = f"127.0.0.1:{3128 + i % _LABELS}#bench" if path == "proxy" else None
        slot = f"{name}-{i}"
        started = time.perf_counter()
        answer = await store.enter_host(host, proxy, slot, 30.0)
        t.enter.append(time.perf_counter() - started)
        assert answer.is_admitted, answer
        started = time.perf_counter()
        await store.leave_host(host, proxy, slot)
        t.leave.append(time.perf_counter() - started)


def _client_process(job: tuple[str, str, int, int], barrier: Any, out: Any) -> None:
    """One client (``job``: store URL, path, calls, its index): its own store connection,
    warmed up, then ``calls`` timed cycles once every client is ready."""
    url, path, calls, index = job

    async def run() -> Timings:
        store = await open_store(url, SystemClock())
        await _client_loop(store, path, _WARM_UP, f"w{index}", Timings())
        barrier.wait()
        timings = Timings(started=time.time())
        await _client_loop(store, path, calls, f"c{index}", timings)
        timings.ended = time.time()
        await store.close()
        return timings

    out.put(asyncio.run(run()))


async def _run(url: str, path: str, calls: int, clients: int) -> Timings:
    store = await open_store(url, SystemClock())
    await store.set_host_limit(LIMIT)
    parts = await run_clients(_client_process, (url, path, calls), clients)
    timings = Timings(started=min(p.started for p in parts), ended=max(p.ended for p in parts))
    for part in parts:
        timings.enter += part.enter
        timings.leave += part.leave
    (budget,) = [b for b in await store.host_budgets() if b.host == HOST]
    assert budget.in_use == 0, "a slot was never left"
    expected = 0 if path == "free" else clients * (_WARM_UP + calls)
    assert budget.requests == expected, "lost or doubled admissions"
    await store.close()
    return timings


_HEADER = (
    "| backend | clients | path | enter mean | enter p50 | enter p99 | leave mean | leave p50 "
    "| leave p99 | cycles/s |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
)


async def _rows(args: argparse.Namespace, tmp: Path, redis_url: str) -> list[str]:
    rows: list[str] = []
    run = 0
    for backend in args.backends:
        for clients in args.clients:
            for path in args.paths:
                run += 1
                url = store_url(backend, tmp, redis_url, run)
                t = await _run(url, path, args.calls // clients, clients)
                rate = len(t.enter) / max(t.ended - t.started, 1e-9)
                rows.append(
                    f"| {backend_name(backend, args.fsync)} | {clients} | `{path}` "
                    f"| {ms_columns(t.enter)} | {ms_columns(t.leave)} | {rate:,.0f} |"
                )
                print(rows[-1], flush=True)
    return rows


async def _main(args: argparse.Namespace) -> None:
    print(_HEADER)
    rows, load = await bench_rows("host", args.fsync, lambda tmp, url: _rows(args, tmp, url))
    note = (
        f"ms per call, wall time; 'clients' processes at once, each with its own store "
        f"connection; {args.calls} enter_host + leave_host cycles a row (all clients); "
        f"load average at start {load:.2f}"
    )
    write_report("host", _HEADER, rows, note)


def main() -> None:
    """Parse the options and run every combination."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--paths", nargs="+", default=["free", "direct", "proxy"])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "redis"])
    parser.add_argument("--fsync", default="everysec", choices=["always", "everysec", "no"])
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
