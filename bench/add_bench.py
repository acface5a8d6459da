"""`hauler add` end to end: N URLs from a file into SQLite and Redis, timed, memory measured.

    python bench/add_bench.py [--lines 1000000]

Writes the URL list to a temp dir, starts its own redis-server (AOF, appendfsync everysec) on a
free 127.0.0.1 port, and runs the real ``hauler add -i FILE --json`` twice per backend: the
first adds every line, the second must add 0 (dedupe). Prints a markdown table with wall time,
lines per second and the command's peak RSS (bounded: input is streamed in batches).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures

from tests.fixtures.redis_server import start_redis

HAULER = str(Path(sys.executable).with_name("hauler"))


def write_urls(path: Path, lines: int) -> None:
    """``lines`` distinct URLs, one a line."""
    with path.open("w") as handle:
        for i in range(lines):
            handle.write(f"http://127.0.0.1:9/files/{i:08d}.bin\n")


def timed_add(store_url: str, urls: Path) -> tuple[dict[str, int], float, int]:
    """(hauler's JSON answer, wall seconds, peak RSS in KiB) of one ``hauler add``."""
    env = {**os.environ, "HAULER_STORE": store_url}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [HAULER, "add", "-i", str(urls), "--json"], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"hauler add failed with exit code {proc.returncode}")
    return json.loads(out), elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hauler-add-bench-") as tmp:
        root = Path(tmp)
        urls = root / "urls.txt"
        write_urls(urls, args.lines)
        redis = start_redis(root / "redis", fsync="everysec")
        try:
            stores = {
                "sqlite": f"sqlite:///{root / 'state.db'}",
                "redis (AOF everysec)": f"{redis.url}?namespace=addbench",
            }
            print("| store | run | added | skipped | seconds | lines/s | peak RSS MiB |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for name, url in stores.items():
                for run in ("first", "again"):
                    answer, seconds, rss_kib = timed_add(url, urls)
                    print(
                        f"| {name} | {run} | {answer['added']} | {answer['skipped']} "
                        f"| {seconds:.1f} | {args.lines / seconds:,.0f} | {rss_kib / 1024:.0f} |"
                    )
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
