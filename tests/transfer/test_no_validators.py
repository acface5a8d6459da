"""Servers that send neither ETag nor Last-Modified (http.server, many dynamic servers).

Within one attempt the same size is the same version, so such a file downloads over many
connections and survives resets; across runs it resumes only when the size matches, and the
result says the resume could not be verified (aria2c's rule).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hauler.errors import ConnectionFailed
from hauler.transfer.engine import Engine
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, leftovers, sha256_file
from tests.transfer.origin import Fault, Origin

NO_VALIDATORS = {"has_etag": False, "has_last_modified": False}
CUT = 600 * KIB


def _starts(origin: Origin, name: str) -> list[int]:
    """The first byte each request on ``name`` asked for."""
    ranges = [r.range or "bytes=0-" for r in origin.requests_for(name)]
    return [int(r.removeprefix("bytes=").partition("-")[0]) for r in ranges]


async def test_eight_connections_on_a_32_mib_file_without_validators(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("nv.bin", 32 * MIB, **NO_VALIDATORS)
    async with Engine(fast_settings(min_split_bytes=1 * MIB)) as engine:
        result = await fetch(engine, origin.url("nv.bin"), tmp_path, connections=8)
    assert sha256_file(result.path) == origin.sha256("nv.bin")
    assert len({start for start in _starts(origin, "nv.bin") if start > 0}) >= 7, (
        "the lanes' replies match the probe: all 8 connections ran"
    )
    assert result.etag is None and result.last_modified is None
    assert not result.is_unverified_resume
    assert leftovers(tmp_path) == []


async def test_a_reset_mid_file_is_retried_not_a_changed_origin(
    origin: Origin, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    origin.add("rst.bin", 4 * MIB, faults={2: Fault(reset_after=300 * KIB)}, **NO_VALIDATORS)
    with caplog.at_level(logging.INFO, logger="hauler"):
        result = await fetch(engine, origin.url("rst.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("rst.bin")
    assert "starting over" not in caplog.text, "a reset is not a new version"
    # The reset lane continued where it stopped instead of starting its segment over.
    reset = origin.requests_for("rst.bin")[1]
    reset_start = int((reset.range or "").removeprefix("bytes=").partition("-")[0])
    later = _starts(origin, "rst.bin")[2:]
    assert any(reset_start < start <= reset_start + 300 * KIB for start in later)


async def test_a_body_cut_short_without_ranges_is_retried_with_backoff(
    origin: Origin, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # http.server's shape: one connection, no Range, no validators; the first body ends early.
    faults = {1: Fault(close_after=200 * KIB)}
    origin.add("cut.bin", 1 * MIB, accepts_ranges=False, faults=faults, **NO_VALIDATORS)
    with caplog.at_level(logging.INFO, logger="hauler"):
        result = await fetch(engine, origin.url("cut.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("cut.bin")
    assert [r.status for r in origin.requests_for("cut.bin")] == [200, 200]
    assert re.search(r"retry 1 in .*cut\.bin: the body was cut short", caplog.text)
    assert "starting over" not in caplog.text and "changed" not in caplog.text


async def _interrupted(origin: Origin, tmp_path: Path, name: str) -> None:
    """A first run that dies after ``CUT`` bytes, leaving the partial and its control file."""
    origin.add(name, 2 * MIB, faults={1: Fault(close_after=CUT)}, **NO_VALIDATORS)
    async with Engine(fast_settings(segment_retries=0, connections=1)) as engine:
        with pytest.raises(ConnectionFailed, match="cut short"):
            await fetch(engine, origin.url(name), tmp_path)
    control = json.loads((tmp_path / f"{name}.part.json").read_text())
    assert control["segments"] == [[0, 2 * MIB, CUT]]
    assert control["etag"] is None and control["last_modified"] is None


async def test_an_interrupted_run_resumes_on_the_size_and_says_it_is_unverified(
    origin: Origin, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _interrupted(origin, tmp_path, "res.bin")
    with caplog.at_level(logging.INFO, logger="hauler"):
        result = await fetch(engine, origin.url("res.bin"), tmp_path, filename="res.bin")
    assert sha256_file(result.path) == origin.sha256("res.bin")
    assert result.resumed_bytes == CUT and result.is_unverified_resume
    assert min(_starts(origin, "res.bin")[1:]) == CUT, "no byte on disk is asked for again"
    assert origin.requests_for("res.bin")[1].if_range is None
    warnings = [r for r in caplog.records if "without verifying" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert leftovers(tmp_path) == []


async def test_a_size_change_between_runs_starts_over(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    await _interrupted(origin, tmp_path, "grow.bin")
    remote = origin.files["grow.bin"]
    remote.size, remote.version = 3 * MIB, 2  # another file now: other size, other bytes
    result = await fetch(engine, origin.url("grow.bin"), tmp_path, filename="grow.bin")
    assert sha256_file(result.path) == origin.sha256("grow.bin")
    assert result.resumed_bytes == 0 and not result.is_unverified_resume
    assert leftovers(tmp_path) == []


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Python's own ``http.server`` on a free loopback port, serving ``served/``; it logs each
    request to ``served.log``."""
    served = tmp_path / "served"
    served.mkdir()
    with (tmp_path / "served.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
            cwd=served,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (...) ..."
        match = re.search(r"port (\d+)", line)
        assert match is not None, f"http.server did not start: {line!r}"
        yield f"http://127.0.0.1:{match.group(1)}", served
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


async def test_pythons_http_server_without_range_support_is_byte_exact(
    http_server: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, served = http_server
    data = os.urandom(6 * MIB + 123)
    (served / "real.bin").write_bytes(data)
    out = tmp_path / "out"
    async with Engine(fast_settings(min_split_bytes=1 * MIB)) as engine:
        result = await asyncio.wait_for(
            fetch(engine, f"{base_url}/real.bin", out, connections=8), timeout=60
        )
    assert sha256_file(result.path) == hashlib.sha256(data).hexdigest()
    assert result.size == len(data) and leftovers(out) == []
    # It answers 200 to a Range request: one connection, one request.
    requests = (tmp_path / "served.log").read_text().count('"GET /real.bin')
    assert requests == 1
