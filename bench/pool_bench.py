"""Pool selection cost: ``lend`` and ``give_back`` per call, on SQLite and on Redis.

    python bench/pool_bench.py [--sizes 10 100 1000] [--calls 2000] [--clients 1 4]
                               [--fsync everysec]

Starts its own redis-server on a free 127.0.0.1 port (AOF, ``--fsync`` as given) and an SQLite
file in a temp dir. For each backend, pool size and number of clients: adds N proxies, then
each client (a store connection of its own, in this process) loops ``lend`` (a least-connections
chooser over the usable proxies) → ``give_back`` (a success counted), timing every call. Prints
a markdown table of mean, p50 and p99 per call in ms, the share of a lend spent in the chooser
itself (pure Python over N resources, the caller's cost on either backend), and checks that
every proxy ends with ``in_use`` 0 and the uses adding up to the lends.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures

from tests.fixtures.redis_server import start_redis

from hauler.clock import SystemClock
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState, Use
from hauler.store import Store, open_store


@dataclass
class Timings:
    """Per-call wall times (s) of one run, and the time spent inside the chooser."""

    lend: list[float] = dataclasses.field(default_factory=list)
    give_back: list[float] = dataclasses.field(default_factory=list)
    choose_s: float = 0.0
    choose_calls: int = 0


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


async def _client_loop(store: Store, calls: int, timings: Timings) -> None:
    choose = _chooser(timings)
    for _ in range(calls):
        started = time.perf_counter()
        lent = await store.lend(ResourceKind.PROXY, choose)
        timings.lend.append(time.perf_counter() - started)
        assert lent is not None
        use = Use(resource_id=lent.id, at=time.time(), latency_s=0.05, partner="a1")
        started = time.perf_counter()
        await store.give_back(lent.id, use, _count_success)
        timings.give_back.append(time.perf_counter() - started)


async def _run(url: str, size: int, calls: int, clients: int) -> Timings:
    stores = [await open_store(url, SystemClock()) for _ in range(clients)]
    specs = [
        ResourceSpec(kind=ResourceKind.PROXY, name=f"http://u:p@127.0.0.1:{10000 + i}")
        for i in range(size)
    ]
    await stores[0].add_resources(specs)
    timings = Timings()
    await _client_loop(stores[0], min(50, calls), Timings())  # warm up: caches, scripts
    await asyncio.gather(*[_client_loop(s, calls // clients, timings) for s in stores])
    pool = await stores[0].list_resources(ResourceKind.PROXY)
    assert all(r.counters.in_use == 0 for r in pool), "a lend was never given back"
    expected = min(50, calls) + clients * (calls // clients)
    assert sum(r.counters.uses for r in pool) == expected, "lost or doubled uses"
    assert sum(r.counters.successes for r in pool) == expected, "lost give_backs"
    for store in stores:
        await store.close()
    return timings


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return " | ".join(
        f"{v * 1000:.3f}" for v in (statistics.fmean(values), statistics.median(ordered), p99)
    )


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pool-bench-") as tmp:
        redis = start_redis(Path(tmp) / "redis", fsync=args.fsync)
        try:
            print(
                "| backend | resources | clients | lend mean | lend p50 | lend p99 "
                "| give_back mean | give_back p50 | give_back p99 | chooser per lend |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            run = 0
            for backend in args.backends:
                for size in args.sizes:
                    for clients in args.clients:
                        run += 1
                        if backend == "sqlite":
                            url = f"sqlite:///{Path(tmp) / f'pools{run}.db'}"
                        else:
                            url = f"{redis.url}?namespace=bench{run}"
                        t = await _run(url, size, args.calls, clients)
                        choose_ms = t.choose_s / max(1, t.choose_calls) * 1000
                        name = backend if backend == "sqlite" else f"redis ({args.fsync})"
                        print(
                            f"| {name} | {size} | {clients} | {_ms(t.lend)} "
                            f"| {_ms(t.give_back)} | {choose_ms:.3f} |",
                            flush=True,
                        )
        finally:
            redis.stop()
    print("\nms per call, wall time, one asyncio process; 'clients' store connections at once")


def main() -> None:
    """Parse the options and run every combination."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "redis"])
    parser.add_argument("--fsync", default="everysec", choices=["always", "everysec", "no"])
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
