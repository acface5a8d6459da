"""A worker on a SQLite store whose ``-shm`` file another program cuts short or deletes.

SQLite maps ``state.db-shm`` (the WAL index) into every process using the store. Cut to 0 bytes
by another program while a worker runs (``truncate -s 0``, a cleanup job), the worker's next
touch of the mapping was a SIGBUS: the process died (-7) without a word, its running job left
to come back after its lease. Deleted, the worker kept an index that processes opening the
store afterwards do not share, and never saw the jobs they added. Now the worker says so in
one line naming the file, repairs or reopens, and finishes every job.

Real parts: ``hauler worker`` and ``hauler add`` subprocesses, the real file cut with
``truncate(1)`` and deleted with ``rm``. The test process opens no store connection of its
own while the file is cut (it would be one more process mapping it).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.cli.hauler_process import hauler
from tests.transfer.origin import Origin
from tests.worker.fleet import sha256_of, spawn_worker, wait_exit

KIB = 1024
MIB = 1024 * KIB
WAIT_S = 30.0
POLL_S = 0.02
CUT_LINE = "its shared-memory file {shm} was cut short by another program"
REPLACED_LINE = "its shared-memory file {shm} was deleted or replaced by another program"


class Fleet:
    """One store directory, one ``hauler worker`` subprocess on it, and its logs."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "jobs").mkdir()
        self.db = tmp_path / "jobs" / "state.db"
        self.shm = Path(f"{self.db}-shm")
        self.url = f"sqlite:///{self.db}"
        self.out = tmp_path / "out"
        self.logs = tmp_path / "logs"
        self.proc: asyncio.subprocess.Process | None = None

    async def add(self, *urls: str) -> None:
        """``hauler add URLS`` (a process of its own, as a user's)."""
        added = await hauler(self.url, "add", *urls)
        assert added.code == 0, added.err

    async def start_worker(self) -> None:
        """``hauler worker --mode forever``: it exits only when stopped (or killed)."""
        self.proc = await spawn_worker(self.url, self.out, self.logs, "--mode", "forever")

    def stderr(self) -> str:
        """The worker's log so far."""
        return (self.logs / "0.err").read_text(errors="replace")

    async def until(self, what: str, check: Callable[[], bool]) -> None:
        """Poll ``check`` (bounded); fail at once, with the log, if the worker died."""
        assert self.proc is not None
        try:
            async with asyncio.timeout(WAIT_S):
                while not check():
                    if self.proc.returncode is not None:
                        pytest.fail(f"the worker died ({self.proc.returncode}) waiting for "
                                    f"{what}: {self.stderr()[-2000:]!r}")  # fmt: skip
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            pytest.fail(f"no {what} within {WAIT_S:g} s; the worker's log: "
                        f"{self.stderr()[-3000:]!r}")  # fmt: skip

    async def stop(self) -> int:
        """``hauler stop`` and the worker's exit status."""
        assert self.proc is not None
        stopped = await hauler(self.url, "stop")
        assert stopped.code == 0, stopped.err
        return await wait_exit(self.proc)

    async def kill(self) -> None:
        """Kill a worker a failed test leaves behind."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def states(self) -> list[str]:
        """Every job's state, from ``hauler jobs --json``."""
        listed = await hauler(self.url, "jobs", "--json")
        assert listed.code == 0, listed.err
        return sorted(job["state"] for job in json.loads(listed.out))


async def running(fleet: Fleet, test: Callable[[Fleet], Awaitable[None]]) -> None:
    """Run ``test`` with the worker killed afterwards if the test left it running."""
    try:
        await test(fleet)
    finally:
        await fleet.kill()


def cut_to_zero(path: Path) -> None:
    """``truncate -s 0 PATH``: another program, no descriptor of the test's kept open."""
    subprocess.run(["truncate", "-s", "0", str(path)], check=True)


async def test_a_worker_survives_its_shm_file_cut_to_zero_mid_job(
    origin: Origin, tmp_path: Path
) -> None:
    # ~1.5 s at 2 x 1 MiB/s: the cut lands while the job runs (lease renewed, bytes flowing).
    origin.add("slow.bin", 3 * MIB, rate_bps=1 * MIB)
    origin.add("later.bin", 200 * KIB)
    fleet = Fleet(tmp_path)

    async def scenario(fleet: Fleet) -> None:
        await fleet.add(origin.url("slow.bin"))
        await fleet.start_worker()
        await fleet.until("the job to start", lambda: origin.bytes_sent("slow.bin") > 256 * KIB)
        cut_to_zero(fleet.shm)
        line = CUT_LINE.format(shm=fleet.shm)
        # On the previous code the worker was dead (SIGBUS, -7, nothing in its log) by now.
        await fleet.until("the one-line warning", lambda: line in fleet.stderr())
        await fleet.add(origin.url("later.bin"))  # a new process joins the repaired file
        await fleet.until("both files", lambda: (fleet.out / "later.bin").exists()
                          and (fleet.out / "slow.bin").exists())  # fmt: skip
        assert await fleet.stop() == 0, fleet.stderr()[-2000:]
        assert [ln for ln in fleet.stderr().splitlines() if "shared-memory" in ln] == [
            ln for ln in fleet.stderr().splitlines() if line in ln
        ], "one line, naming the file"
        assert str(fleet.db) in fleet.stderr()
        assert "Traceback" not in fleet.stderr() and "Fatal Python error" not in fleet.stderr()

    await running(fleet, scenario)
    for name in ("slow.bin", "later.bin"):
        assert sha256_of(fleet.out / name) == origin.sha256(name)
    assert await fleet.states() == ["done", "done"], "no job lost"
    assert len(origin.requests_for("slow.bin")) <= 4, "the running job was not started again"


async def test_a_worker_rejoins_a_deleted_shm_file(origin: Origin, tmp_path: Path) -> None:
    origin.add("first.bin", 100 * KIB)
    origin.add("after.bin", 100 * KIB)
    fleet = Fleet(tmp_path)

    async def scenario(fleet: Fleet) -> None:
        await fleet.add(origin.url("first.bin"))
        await fleet.start_worker()
        await fleet.until("the first file", (fleet.out / "first.bin").exists)
        fleet.shm.unlink()
        line = REPLACED_LINE.format(shm=fleet.shm)
        await fleet.until("the one-line warning", lambda: line in fleet.stderr())
        # `hauler add` opens the store after the deletion, with a -shm of its own: on the
        # previous code the worker kept the deleted one and never saw this job.
        await fleet.add(origin.url("after.bin"))
        await fleet.until("the job added after", (fleet.out / "after.bin").exists)
        assert await fleet.stop() == 0, fleet.stderr()[-2000:]

    await running(fleet, scenario)
    assert sha256_of(fleet.out / "after.bin") == origin.sha256("after.bin")
    assert await fleet.states() == ["done", "done"]


async def test_a_cut_shm_file_on_a_full_disk_waits_for_room(
    origin: Origin, small_disk: Path, tmp_path: Path
) -> None:
    """Restoring the size on a full disk would only move the SIGBUS to SQLite's next write
    into the mapping: the store is unavailable (the worker retries, saying why) until there is
    room, then the worker carries on."""
    origin.add("a.bin", 50 * KIB)
    origin.add("b.bin", 50 * KIB)
    fleet = Fleet(tmp_path)
    fleet.db = small_disk / "state.db"
    fleet.shm = Path(f"{fleet.db}-shm")
    fleet.url = f"sqlite:///{fleet.db}"
    filler = small_disk / "filler"

    async def scenario(fleet: Fleet) -> None:
        await fleet.add(origin.url("a.bin"))
        await fleet.start_worker()
        await fleet.until("the first file", (fleet.out / "a.bin").exists)
        assert fleet.proc is not None
        # Held still (SIGSTOP) while the file is cut and the disk filled, pages the cut gave
        # back included: the worker then finds both at once.
        fleet.proc.send_signal(signal.SIGSTOP)
        try:
            cut_to_zero(fleet.shm)
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True, check=False
            )
        finally:
            fleet.proc.send_signal(signal.SIGCONT)
        no_room = f"{fleet.shm} of the SQLite store was cut short by another program, and its disk"
        await fleet.until("the no-room warning", lambda: no_room in fleet.stderr())
        filler.unlink()
        line = CUT_LINE.format(shm=fleet.shm)
        await fleet.until("the repair", lambda: line in fleet.stderr())
        await fleet.add(origin.url("b.bin"))
        await fleet.until("the second file", (fleet.out / "b.bin").exists)
        assert await fleet.stop() == 0, fleet.stderr()[-2000:]

    await running(fleet, scenario)
    assert sha256_of(fleet.out / "b.bin") == origin.sha256("b.bin")
    assert await fleet.states() == ["done", "done"]


def test_a_shm_file_deleted_while_a_call_runs_still_reads_as_replaced(tmp_path: Path) -> None:
    """The watch records the file after each call; deleted during one, it must not be taken
    for "there is none" (the connection would keep the deleted file for good: a race a loaded
    machine hit one run in seven)."""
    from hauler.store.sqlite_db import SharedMemoryWatch

    db = tmp_path / "state.db"
    shm = Path(f"{db}-shm")
    shm.write_bytes(b"\0" * 32768)
    watch = SharedMemoryWatch(db)
    watch.record()  # after one call
    shm.unlink()  # during the next
    watch.record()  # that call's end
    assert watch.change() == ("replaced", 0)
