"""`hauler worker` as a user runs it: drain what `hauler add` queued; exit on `hauler stop`."""

from __future__ import annotations

import json
from pathlib import Path

from hauler.store import Store
from tests.cli.hauler_process import hauler
from tests.transfer.origin import Origin
from tests.worker.fleet import sha256_of, spawn_worker, wait_exit, wait_for

KIB = 1024


async def test_add_then_drain_worker_downloads_all(
    store_url: str, store: Store, origin: Origin, tmp_path: Path
) -> None:
    names = [f"d{i}.bin" for i in range(6)]
    for i, name in enumerate(names):
        origin.add(name, 1 + i * 37 * KIB)
    urls = "\n".join(origin.url(name) for name in names)
    assert (await hauler(store_url, "add", "-", stdin=urls)).code == 0
    out = tmp_path / "out"
    proc = await spawn_worker(store_url, out, tmp_path / "logs", "--mode", "drain", "--json")
    assert await wait_exit(proc) == 0
    summary = json.loads((tmp_path / "logs" / "0.out").read_text())
    assert (summary["done"], summary["failed"]) == (len(names), 0)
    for name in names:
        assert sha256_of(out / name) == origin.sha256(name)
    status = (await hauler(store_url, "status", "--json")).json()
    assert status["jobs"]["done"] == len(names) and status["workers"] == []


async def test_hauler_stop_makes_a_worker_exit_gracefully(
    store_url: str, store: Store, tmp_path: Path
) -> None:
    proc = await spawn_worker(store_url, tmp_path / "out", tmp_path / "logs", "--name", "w-stop")

    async def is_up() -> bool:
        return [w.name for w in await store.workers()] == ["w-stop"]

    try:
        await wait_for(is_up)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    assert (await hauler(store_url, "stop")).code == 0
    code = await wait_exit(proc)
    out, err = ((tmp_path / "logs" / f"0.{ext}").read_text() for ext in ("out", "err"))
    assert code == 0, err
    assert await store.workers() == [], err
    assert "worker exiting: 0 done" in out and "stop requested" in err, (out, err)
