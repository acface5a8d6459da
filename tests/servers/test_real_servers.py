"""`hauler get` against real servers in their default configurations: nginx, Apache, lighttpd
(Debian's packages) and Python's http.server. Every file's sha256 is compared with what was
served: one 48 MiB file with 8 connections, 300 small files 32 at once, and a Ctrl-C mid-way
through the big one followed by the same command again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers.fixtures import (
    BIG_NAME,
    BIG_SIZE,
    MIB,
    RealServer,
    ServedFiles,
    apache_command,
    open_directory,
    start_server,
)

RUN_TIMEOUT_S = 60.0
POLL_S = 0.01
KILL_WAIT_S = 30.0
# Throttle only the run to be interrupted, so that there is a "mid-way" to aim Ctrl-C at on
# loopback (the servers are not slowed down; their configuration stays the default).
INTERRUPTED_RATE = "16M"
PROGRESS_BEFORE_KILL = 4 * MIB
FIXED_MTIME = "Tue, 14 Nov 2023 22:13:20 GMT"


# --- what each server sends by default (documents them, and checks they are the defaults) ----


@dataclass(frozen=True)
class Defaults:
    """The headers a server sends for a static file in its default configuration."""

    server_prefix: str
    has_etag: bool
    has_ranges: bool


DEFAULTS = {
    "nginx": Defaults("nginx/", has_etag=True, has_ranges=True),
    "apache": Defaults("Apache/", has_etag=True, has_ranges=True),
    "lighttpd": Defaults("lighttpd/", has_etag=True, has_ranges=True),
    # No ETag, no Accept-Ranges: a Range request is answered 200 with the whole file.
    "http.server": Defaults("SimpleHTTP/", has_etag=False, has_ranges=False),
}


def request(server: RealServer, name: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Status and (lower-cased) headers of a GET; the body is read and dropped."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", f"/{name}", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def test_each_server_sends_its_default_headers(real_server: RealServer) -> None:
    expected = DEFAULTS[real_server.name]
    status, headers = request(real_server, "small-100.bin", {})
    print(f"{real_server.name}: {status} {headers}")
    assert status == 200
    assert headers["server"].startswith(expected.server_prefix)
    assert headers["last-modified"] == FIXED_MTIME
    assert ("etag" in headers) == expected.has_etag
    if expected.has_etag:
        assert not headers["etag"].startswith("W/"), "a file older than a second: a strong ETag"
    assert (headers.get("accept-ranges") == "bytes") == expected.has_ranges
    ranged, range_headers = request(real_server, "small-100.bin", {"Range": "bytes=0-99"})
    assert ranged == (206 if expected.has_ranges else 200)
    if expected.has_ranges:
        assert range_headers["content-range"].startswith("bytes 0-99/")


# --- running hauler ----------------------------------------------------------------------------


def hauler_env(cwd: Path) -> dict[str, str]:
    """The user's environment without any hauler configuration; the store in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAULER_")}
    env |= {
        "HAULER_CONFIG": os.devnull,
        "XDG_CONFIG_HOME": str(cwd / "no-config-home"),
        "HAULER_STORE": f"sqlite:///{cwd / 'state.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def hauler_command(*args: str) -> list[str]:
    """``python -m hauler ARGS``."""
    return [sys.executable, "-m", "hauler", *args]


def run_hauler(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``hauler ARGS`` to completion (bounded), with the production defaults."""
    return subprocess.run(
        hauler_command(*args),
        cwd=cwd,
        env=hauler_env(cwd),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``--json`` summary of a run that must have succeeded."""
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def sha256_file(path: Path) -> str:
    """The sha256 of a file on disk."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- the downloads -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_48_mib_file_with_8_connections(real_server: RealServer, tmp_path: Path) -> None:
    has_log = real_server.access_log is not None
    ranged_before = real_server.count_requests(BIG_NAME, 206) if has_log else 0
    done = run_hauler(tmp_path, "get", "-x", "8", "-d", "out", "--json", real_server.url(BIG_NAME))
    record = summary(done)
    assert record["ok"] == 1 and record["failed"] == 0
    assert sha256_file(tmp_path / "out" / BIG_NAME) == real_server.files.sha256[BIG_NAME]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [BIG_NAME]
    if has_log:
        ranged = real_server.count_requests(BIG_NAME, 206) - ranged_before
        print(f"{real_server.name}: {ranged} range requests (206) for {BIG_NAME}")
        # The probe plus at least 7 more lanes when the server honours Range; none otherwise.
        assert ranged >= 8 if DEFAULTS[real_server.name].has_ranges else ranged == 0


@pytest.mark.slow
def test_300_small_files_32_at_once(real_server: RealServer, tmp_path: Path) -> None:
    names = real_server.files.small_names
    (tmp_path / "list.txt").write_text("".join(real_server.url(n) + "\n" for n in names))
    done = run_hauler(tmp_path, "get", "-j", "32", "-i", "list.txt", "-d", "out", "--json")
    record = summary(done)
    assert (record["ok"], record["failed"]) == (len(names), 0)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == names, "no partials, no renamed copies"
    got = {name: sha256_file(out / name) for name in names}
    wrong = [name for name in names if got[name] != real_server.files.sha256[name]]
    assert wrong == []
    assert (out / "small-000.bin").stat().st_size == 0
    assert (out / "small-001.bin").stat().st_size == 1


def progress_of(control: Path) -> int:
    """Bytes the control file says are on disk (0 while it is absent or being replaced)."""
    try:
        segments = json.loads(control.read_text())["segments"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(pos - start for start, _end, pos in segments)


def interrupt_mid_way(cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Start ``hauler ARGS``, send SIGINT once its control file records some progress."""
    part = cwd / "out" / f"{BIG_NAME}.part"
    control = cwd / "out" / f"{BIG_NAME}.part.json"
    process = subprocess.Popen(
        hauler_command(*args),
        cwd=cwd,
        env=hauler_env(cwd),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + KILL_WAIT_S
    try:
        while not (part.exists() and progress_of(control) >= PROGRESS_BEFORE_KILL):
            assert process.poll() is None, (
                f"hauler ended before Ctrl-C: {process.stderr.read() if process.stderr else ''}"
            )
            assert time.monotonic() < deadline, "no progress recorded within the bound"
            time.sleep(POLL_S)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@pytest.mark.slow
def test_ctrl_c_mid_way_then_the_same_command_resumes(
    real_server: RealServer, tmp_path: Path
) -> None:
    url = real_server.url(BIG_NAME)
    args = ["get", "-x", "8", "-d", "out", "--json", url]
    stopped = interrupt_mid_way(tmp_path, [*args, "--limit-rate", INTERRUPTED_RATE])
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    record = summary(run_hauler(tmp_path, *args))
    assert sha256_file(tmp_path / "out" / BIG_NAME) == real_server.files.sha256[BIG_NAME]
    (file,) = record["files"]
    print(f"{real_server.name}: resumed {file['resumed_bytes']}, fetched {file['bytes_fetched']}")
    if DEFAULTS[real_server.name].has_ranges:
        assert file["resumed_bytes"] >= PROGRESS_BEFORE_KILL
        assert file["bytes_fetched"] <= BIG_SIZE - PROGRESS_BEFORE_KILL
    else:
        # No Range support: the only way to the file is the whole body again.
        assert file["bytes_fetched"] == BIG_SIZE
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [BIG_NAME]


@pytest.fixture
def apache_with_a_fresh_file() -> Iterator[RealServer]:
    """Apache serving one 16 MiB file whose mtime is ahead of the server's clock."""
    root = open_directory("hauler-fresh-")
    data = random.Random(7).randbytes(16 * MIB)
    (root / "fresh.bin").write_bytes(data)
    (root / "fresh.bin").chmod(0o644)
    ahead = time.time() + 3600  # a clock ahead (NFS) or a file written this very second
    os.utime(root / "fresh.bin", (ahead, ahead))
    files = ServedFiles(root, {"fresh.bin": hashlib.sha256(data).hexdigest()})
    server = start_server("apache", apache_command, files)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_apache_weak_etag_still_gets_eight_ranges(
    apache_with_a_fresh_file: RealServer, tmp_path: Path
) -> None:
    """Apache's default ETag is weak (W/"...") for a file modified less than a second before
    the request: such a file must still download with 8 ranged connections."""
    server = apache_with_a_fresh_file
    _status, headers = request(server, "fresh.bin", {})
    assert headers["etag"].startswith('W/"'), "Apache's default for a just-modified file"
    done = run_hauler(tmp_path, "get", "-x", "8", "-d", "out", "--json", server.url("fresh.bin"))
    summary(done)
    assert sha256_file(tmp_path / "out" / "fresh.bin") == server.files.sha256["fresh.bin"]
    full_bodies = server.count_requests("fresh.bin", 200) - 1  # our own GET above
    assert (server.count_requests("fresh.bin", 206), full_bodies) >= (8, 0)
