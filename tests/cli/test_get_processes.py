"""`hauler get` spread over forked processes (-P): same files, same report, same signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from hauler.local.fanout import MIN_FILES_PER_PROCESS, process_count, share_of
from tests.cli.process import HaulerRunner, finish
from tests.cli.test_get import KIB, MIB, sha256_of
from tests.cli.test_resume import wait_until_sent
from tests.transfer.origin import Origin

SLOW_BPS = 256 * KIB
POLL_S = 0.02


# (files, parallel, --processes, cores, has an overall limit) -> processes
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ((2000, 64, None, 2, False), 2),  # one per core
        ((2000, 64, None, 8, False), 8),
        ((MIN_FILES_PER_PROCESS * 2 - 1, 64, None, 8, False), 1),  # too few files for two
        ((MIN_FILES_PER_PROCESS * 3, 64, None, 8, False), 3),
        ((2000, 1, None, 8, False), 1),  # -j1: one file at a time, one process
        ((2000, 5, None, 8, False), 1),  # -j5 (the default): too few lanes to share
        ((2000, 16, None, 8, False), 2),  # 8 files at once per process at least
        ((2000, 64, None, 2, True), 1),  # an overall speed limit stays exact in one process
        ((10, 64, 4, 2, False), 4),  # -P wins over the core count and the file threshold
        ((3, 64, 8, 2, False), 3),  # ... but never more processes than files
        ((100, 2, 8, 2, False), 2),  # ... or than files at once
        ((1, 1, None, 1, False), 1),
    ],
)
def test_process_count(case: tuple[int, int, int | None, int, bool], expected: int) -> None:
    assert process_count(*case) == expected


def test_shares_differ_by_at_most_one_and_add_up() -> None:
    for total in range(1, 70):
        for shares in range(1, total + 1):
            parts = [share_of(total, shares, i) for i in range(shares)]
            assert sum(parts) == total
            assert max(parts) - min(parts) <= 1
            assert min(parts) >= 1


def write_list(cli: HaulerRunner, urls: list[str]) -> Path:
    """The URLs as an input file in the run's directory."""
    path = cli.cwd / "urls.txt"
    path.write_text("".join(f"{url}\n" for url in urls))
    return path


async def test_files_are_spread_and_reported_in_input_order(
    origin: Origin, cli: HaulerRunner
) -> None:
    names = [f"f{i:02d}.bin" for i in range(24)]
    for i, name in enumerate(names):
        origin.add(name, 10 * KIB + 997 * i)
    urls = [origin.url(name) for name in names]
    urls.insert(7, origin.url("missing.bin"))
    listing = write_list(cli, urls)
    done = await cli.run("get", "--json", "-P", "3", "-j", "6", "-d", "out", "-i", str(listing))
    assert done.returncode == 4, done.stderr
    summary = json.loads(done.stdout)
    assert [record["url"] for record in summary["files"]] == urls
    assert (summary["ok"], summary["failed"]) == (24, 1)
    assert summary["files"][7]["error"]["class"] == "not_found"
    assert "missing.bin" in done.stderr
    for name in names:
        assert sha256_of(cli.cwd / "out" / name) == origin.sha256(name)
    assert sorted(p.name for p in (cli.cwd / "out").iterdir()) == names
    # Three processes each opened their own connections: the origin saw several.
    ports = {r.peer_port for name in names for r in origin.requests_for(name)}
    assert len(ports) >= 3


async def test_plain_lines_one_per_file(origin: Origin, cli: HaulerRunner) -> None:
    names = [f"p{i}.bin" for i in range(6)]
    for name in names:
        origin.add(name, 64 * KIB)
    done = await cli.run("get", "-P", "2", "-j", "4", "-d", "out", *map(origin.url, names))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("done ") == 6
    assert "6 ok, 0 failed" in done.stdout


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (2nd field) may hold spaces; the parent pid follows the state.
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


async def wait_for_children(process: asyncio.subprocess.Process, count: int) -> list[int]:
    """The process's children once ``count`` of them run (bounded in time)."""
    async with asyncio.timeout(30):
        while len(found := children_of(process.pid)) < count:
            assert process.returncode is None
            await asyncio.sleep(POLL_S)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_stops_every_process_and_the_rerun_resumes(
    origin: Origin, cli: HaulerRunner, signum: signal.Signals, status: int
) -> None:
    names = [f"s{i}.bin" for i in range(4)]
    for name in names:
        origin.add(name, 2 * MIB, rate_bps=SLOW_BPS)
    args = ["get", "-P", "2", "-j", "4", "-x", "1", "-d", "out", *map(origin.url, names)]
    process = await cli.start(*args)
    await wait_for_children(process, 2)
    for name in names:
        await wait_until_sent(origin, name, 256 * KIB, process)
    process.send_signal(signum)  # to the parent alone: it stops the children
    stopped = await finish(process)
    assert stopped.returncode == status, stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    out = cli.cwd / "out"
    assert not any((out / name).exists() for name in names), "a partial under its final name"
    assert children_of(process.pid) == []
    for name in names:
        origin.files[name].rate_bps = None
    sent_before = sum(origin.bytes_sent(name) for name in names)
    done = await finish(await cli.start(*args))
    assert done.returncode == 0, done.stderr
    for name in names:
        assert sha256_of(out / name) == origin.sha256(name)
    resent = sum(origin.bytes_sent(name) for name in names) - 4 * 2 * MIB
    assert resent < sent_before, "the rerun started over instead of resuming"


@pytest.mark.slow
async def test_a_killed_process_fails_its_files_not_the_others(
    origin: Origin, cli: HaulerRunner
) -> None:
    # 512 KiB at 256 KiB/s: 2 s a file, all four at once (the survivor's two set the test's
    # length: a response keeps the rate it started with). The kill comes after 64 KiB of each.
    slow = [f"k{i}.bin" for i in range(4)]
    for name in slow:
        origin.add(name, 512 * KIB, rate_bps=SLOW_BPS)
    args = ["get", "--json", "-P", "2", "-j", "4", "-x", "1", "-d", "out", *map(origin.url, slow)]
    process = await cli.start(*args)
    children = await wait_for_children(process, 2)
    for name in slow:
        await wait_until_sent(origin, name, 64 * KIB, process)
    victim = min(children)
    os.kill(victim, signal.SIGKILL)  # mid-file: 64 KiB of 512 sent
    done = await finish(process)
    assert done.returncode == 1  # lost
    summary = json.loads(done.stdout)
    failed = [r for r in summary["files"] if not r["ok"]]
    assert failed, "the killed process's files must be reported failed"
    for record in failed:
        assert record["error"]["class"] == "lost"
        assert "SIGKILL" in record["error"]["message"]
    for record in summary["files"]:
        if record["ok"]:
            name = record["url"].rsplit("/", 1)[1]
            assert sha256_of(cli.cwd / "out" / name) == origin.sha256(name)
    assert summary["ok"] + summary["failed"] == len(slow)
