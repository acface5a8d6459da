"""Resume from the control file, validators and If-Range: a file is never two versions mixed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hauler.errors import ConnectionFailed
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, leftovers, sha256_file
from tests.transfer.origin import Fault, Origin

CUT = 600 * KIB


async def interrupted(origin: Origin, tmp_path: Path, name: str, **options: object) -> None:
    """A first run that dies after ``CUT`` bytes, leaving the partial and its control file."""
    origin.add(name, 2 * MIB, faults={1: Fault(close_after=CUT)}, **options)
    async with Engine(fast_settings(segment_retries=0, connections=1)) as engine:
        with pytest.raises(ConnectionFailed):
            await fetch(engine, origin.url(name), tmp_path)
    assert leftovers(tmp_path) == [f"{name}.part", f"{name}.part.json"]
    control = json.loads((tmp_path / f"{name}.part.json").read_text())
    assert control["segments"] == [[0, 2 * MIB, CUT]]


@pytest.mark.parametrize("has_etag", [True, False])
async def test_second_run_continues_from_the_control_file(
    origin: Origin, engine: Engine, tmp_path: Path, has_etag: bool
) -> None:
    await interrupted(origin, tmp_path, "res.bin", has_etag=has_etag)
    result = await fetch(engine, origin.url("res.bin"), tmp_path, filename="res.bin")
    assert sha256_file(result.path) == origin.sha256("res.bin")
    assert result.resumed_bytes == CUT
    second_run = origin.requests_for("res.bin")[1:]
    starts = [int((r.range or "").removeprefix("bytes=").partition("-")[0]) for r in second_run]
    assert min(starts) == CUT, "no byte already on disk is asked for again"
    probe = origin.requests_for("res.bin")[1]
    assert probe.range == f"bytes={CUT}-"
    remote = origin.files["res.bin"]
    assert probe.if_range == (remote.etag if has_etag else remote.last_modified)
    assert leftovers(tmp_path) == []


async def test_resume_when_the_name_comes_from_the_response(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    await interrupted(origin, tmp_path, "named.bin")
    result = await fetch(engine, origin.url("named.bin"), tmp_path)
    assert result.resumed_bytes == CUT
    assert sha256_file(result.path) == origin.sha256("named.bin")
    # The URL's name finds the control file before the response: no byte on disk is re-sent.
    second_run = origin.requests_for("named.bin")[1:]
    assert second_run[0].range == f"bytes={CUT}-"
    starts = [int((r.range or "").removeprefix("bytes=").partition("-")[0]) for r in second_run]
    assert min(starts) == CUT


async def test_resume_guess_that_names_another_file_still_completes(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    # The URL names "plain.bin" (whose partial exists), but the response names "other.bin".
    await interrupted(origin, tmp_path, "plain.bin")
    origin.files["plain.bin"].disposition = 'attachment; filename="other.bin"'
    result = await fetch(engine, origin.url("plain.bin"), tmp_path)
    assert result.path.name == "other.bin" and result.resumed_bytes == 0
    assert sha256_file(result.path) == origin.sha256("plain.bin")


async def test_changed_remote_starts_over_from_zero(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    await interrupted(origin, tmp_path, "chg.bin")
    origin.files["chg.bin"].version += 1
    result = await fetch(engine, origin.url("chg.bin"), tmp_path, filename="chg.bin")
    assert result.resumed_bytes == 0
    assert sha256_file(result.path) == origin.sha256("chg.bin")
    assert origin.requests_for("chg.bin")[1].status == 200, "If-Range must have been sent"


async def test_remote_that_stops_honouring_ranges_restarts_cleanly(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    await interrupted(origin, tmp_path, "nr.bin")
    origin.files["nr.bin"].accepts_ranges = False
    result = await fetch(engine, origin.url("nr.bin"), tmp_path, filename="nr.bin")
    assert result.resumed_bytes == 0
    assert sha256_file(result.path) == origin.sha256("nr.bin")


async def test_change_during_the_download_restarts_with_the_new_version(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("mid.bin", 2 * MIB, faults={3: Fault(bump_version=True)})
    result = await fetch(engine, origin.url("mid.bin"), tmp_path)
    assert origin.files["mid.bin"].version == 2
    assert sha256_file(result.path) == origin.sha256("mid.bin")
    assert result.etag == origin.files["mid.bin"].etag


async def test_cancel_keeps_the_partial_and_resume_finishes_it(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("slow.bin", 1 * MIB, rate_bps=1 * MIB)
    control = tmp_path / "slow.bin.part.json"
    async with Engine(fast_settings(connections=2, min_split_bytes=256 * KIB)) as engine:
        request = TransferRequest(url=origin.url("slow.bin"), output_dir=tmp_path)
        task = asyncio.create_task(engine.download(request))
        for _ in range(200):
            if control.exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    saved = json.loads(control.read_text())
    done = sum(pos - start for start, _, pos in saved["segments"])
    assert 0 < done < 1 * MIB
    origin.files["slow.bin"].rate_bps = None
    async with Engine(fast_settings()) as engine:
        result = await fetch(engine, origin.url("slow.bin"), tmp_path)
    assert result.resumed_bytes == done
    assert sha256_file(result.path) == origin.sha256("slow.bin")
    assert leftovers(tmp_path) == []


async def test_control_file_only_ever_claims_bytes_that_are_on_disk(
    origin: Origin, tmp_path: Path
) -> None:
    remote = origin.add("claim.bin", 1 * MIB, rate_bps=2 * MIB)
    control = tmp_path / "claim.bin.part.json"
    part = tmp_path / "claim.bin.part"
    checked = 0
    async with Engine(fast_settings(connections=3, min_split_bytes=128 * KIB)) as engine:
        request = TransferRequest(url=origin.url("claim.bin"), output_dir=tmp_path)
        task = asyncio.create_task(engine.download(request))
        for _ in range(300):
            if task.done():
                break
            await asyncio.sleep(0.01)
            try:
                segments = json.loads(control.read_text())["segments"]
                on_disk = part.read_bytes()
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            for start, _, pos in segments:
                assert on_disk[start:pos] == remote.body(start, pos)
            checked += 1
        result = await task
    assert checked > 0
    assert sha256_file(result.path) == origin.sha256("claim.bin")


async def test_remote_that_shrank_below_the_partial_starts_over(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    await interrupted(origin, tmp_path, "shrunk.bin")
    remote = origin.files["shrunk.bin"]
    remote.size, remote.version = 100 * KIB, remote.version + 1
    result = await fetch(engine, origin.url("shrunk.bin"), tmp_path, filename="shrunk.bin")
    assert result.size == 100 * KIB
    assert sha256_file(result.path) == origin.sha256("shrunk.bin")
    assert leftovers(tmp_path) == []


async def test_partial_left_by_another_process_after_listing_still_resumes(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    # The engine lists the directory's control files on first use (none yet) ...
    origin.add("first.bin", 10 * KIB)
    await fetch(engine, origin.url("first.bin"), tmp_path)
    # ... then another process (another engine) leaves a partial there.
    await interrupted(origin, tmp_path, "late.bin")
    result = await fetch(engine, origin.url("late.bin"), tmp_path)
    # The probe, not knowing, asks from 0; the locked control file still resumes the file.
    assert origin.requests_for("late.bin")[1].range == "bytes=0-"
    assert result.resumed_bytes == CUT
    assert sha256_file(result.path) == origin.sha256("late.bin")
    assert leftovers(tmp_path) == []
