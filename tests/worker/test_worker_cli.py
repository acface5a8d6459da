"""`hauler worker` as a user runs it: drain what `hauler add` queued; exit on `hauler stop`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hauler.config import Settings
from hauler.store import Store
from hauler.worker.runner import Worker
from hauler.worker.serve import serve
from tests.cli.hauler_process import hauler
from tests.transfer.origin import Fault, Origin
from tests.worker.fleet import (
    add_urls,
    sha256_of,
    spawn_worker,
    transfer_settings,
    wait_exit,
    wait_for,
    worker_settings,
)

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


async def test_drain_exit_status_says_why_jobs_failed(
    store_url: str, store: Store, origin: Origin, tmp_path: Path
) -> None:
    """Failed jobs make a drain exit non-zero, by cause (4: not found), as `get` does."""
    origin.add("ok.bin", 10 * KIB)
    urls = f"{origin.url('ok.bin')}\n{origin.url('missing.bin')}\n"
    assert (await hauler(store_url, "add", "-", stdin=urls)).code == 0
    logs = tmp_path / "logs"
    proc = await spawn_worker(store_url, tmp_path / "out", logs, "--mode", "drain", "--json")
    assert await wait_exit(proc) == 4, (logs / "0.err").read_text()
    summary = json.loads((logs / "0.out").read_text())
    assert (summary["done"], summary["failed"], summary["exit_code"]) == (1, 1, 4)
    assert summary["failed_classes"] == {"not_found": 1}
    origin.add("denied.bin", 10 * KIB, faults={1: Fault(status=403)})
    assert (await hauler(store_url, "add", origin.url("denied.bin"))).code == 0
    assert (await hauler(store_url, "requeue", "--reason", "not_found")).code == 0
    proc = await spawn_worker(store_url, tmp_path / "out", logs, "--mode", "drain")
    assert await wait_exit(proc) == 1  # two causes: "some failed"
    assert "1 failed" not in (logs / "1.out").read_text()  # both failed this time
    assert "2 failed" in (logs / "1.out").read_text()


async def test_an_unusable_output_directory_is_one_line_and_exit_2(
    store_url: str, tmp_path: Path, small_disk: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        cases = {
            blocker / "out": "cannot create the output directory",
            small_disk: "cannot write in the output directory",
            small_disk / "sub": "cannot create the output directory",
        }
        for out_dir, message in cases.items():
            logs = tmp_path / f"logs-{len(list(tmp_path.iterdir()))}"
            proc = await spawn_worker(store_url, out_dir, logs, "--mode", "drain")
            code = await wait_exit(proc)
            err = (logs / "0.err").read_text()
            assert code == 2, err
            assert "Traceback" not in err and len(err.splitlines()) == 1, err
            assert err.startswith(f"hauler: {message} {out_dir}: "), err
            assert ("read-only file system" in err) is (out_dir != blocker / "out"), err
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)


async def test_serve_is_the_worker_service_the_cli_calls(
    store_url: str, store: Store, origin: Origin, tmp_path: Path
) -> None:
    """``hauler.worker.serve.serve`` opens the store, runs a worker to its mode's end, closes."""
    origin.add("s.bin", 40 * KIB)
    await add_urls(store, [origin.url("s.bin")])
    settings = Settings(store=store_url, transfer=transfer_settings())
    ws = worker_settings(output_dir=tmp_path / "out", mode="drain", name="w-serve")
    started: list[Worker] = []
    summary = await serve(settings, ws, started.append)
    assert [w.identity.name for w in started] == ["w-serve"]
    assert (summary.done, summary.failed) == (1, 0)
    assert sha256_of(tmp_path / "out" / "s.bin") == origin.sha256("s.bin")
    assert await store.workers() == []
