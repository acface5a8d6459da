"""The engine's ordinary paths: segmented download, small files, names, redirects, integrity."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from hauler.config import TransferSettings
from hauler.errors import BadRequest, ContentMismatch, LocalError, Transient
from hauler.models import Checksum, OnExisting
from hauler.transfer.engine import Engine
from hauler.transfer.partfile import PartFile
from hauler.transfer.request import TransferRequest
from tests.transfer.conftest import KIB, MIB, fetch, leftovers, sha256_file
from tests.transfer.origin import Origin


class Recorder:
    """A ProgressSink that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, int]] = []
        self.advanced_bytes = 0

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        self.calls.append((name, total_bytes, done_bytes))

    def advanced(self, nbytes: int) -> None:
        self.advanced_bytes += nbytes


async def test_segmented_download_matches_the_origin(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("big.bin", 4 * MIB + 123)
    result = await fetch(engine, origin.url("big.bin"), tmp_path)
    assert result.path == (tmp_path / "big.bin").resolve()
    assert sha256_file(result.path) == origin.sha256("big.bin")
    assert result.size == 4 * MIB + 123
    ranges = [r.range for r in origin.requests_for("big.bin")]
    assert ranges[0] == "bytes=0-"
    assert len(ranges) >= 4, "several connections must have been used"
    assert leftovers(tmp_path) == []


async def test_small_file_writes_no_control_file(
    origin: Origin, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.add("small.bin", 48 * KIB)
    saved: list[object] = []
    original = PartFile.save_control
    monkeypatch.setattr(
        PartFile, "save_control", lambda self, state: saved.append(state) or original(self, state)
    )
    result = await fetch(engine, origin.url("small.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("small.bin")
    assert saved == []
    assert len(origin.requests_for("small.bin")) == 1


async def test_progress_reports_every_byte_once(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("p.bin", 3 * MIB)
    sink = Recorder()
    request = TransferRequest(url=origin.url("p.bin"), output_dir=tmp_path)
    result = await engine.download(request, sink)
    assert sink.calls == [("p.bin", 3 * MIB, 0)]
    assert sink.advanced_bytes == 3 * MIB
    assert sha256_file(result.path) == origin.sha256("p.bin")


async def test_many_concurrent_downloads_share_one_engine(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    names = [f"f{i}.bin" for i in range(24)]
    for index, name in enumerate(names):
        origin.add(name, 32 * KIB + index * 7919)
    results = await asyncio.gather(*(fetch(engine, origin.url(n), tmp_path) for n in names))
    for name, result in zip(names, results, strict=True):
        assert sha256_file(result.path) == origin.sha256(name)


async def test_redirects_are_followed_and_later_segments_use_the_final_url(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("moved.bin", 1 * MIB)
    result = await fetch(engine, origin.url("moved.bin", redirects=3), tmp_path)
    assert result.final_url == origin.url("moved.bin")
    assert sha256_file(result.path) == origin.sha256("moved.bin")
    hops = [r for r in origin.log if r.path.startswith("/redirect/")]
    assert len(hops) == 3, "only the probe goes through the redirect chain"


async def test_content_disposition_names_the_file(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("dl", 100 * KIB, disposition='attachment; filename="report 2024.pdf"')
    result = await fetch(engine, origin.url("dl"), tmp_path)
    assert result.path.name == "report 2024.pdf"
    assert sha256_file(result.path) == origin.sha256("dl")


@pytest.mark.parametrize(
    "disposition",
    ['attachment; filename="../../etc/passwd"', "attachment; filename*=UTF-8''..%2F..%2Fx.sh"],
)
async def test_hostile_content_disposition_stays_inside_the_output_dir(
    origin: Origin, engine: Engine, tmp_path: Path, disposition: str
) -> None:
    origin.add("evil", 70 * KIB, disposition=disposition)
    out = tmp_path / "out"
    result = await fetch(engine, origin.url("evil"), out)
    assert result.path.parent == out.resolve()
    assert sha256_file(result.path) == origin.sha256("evil")


async def test_requested_filename_wins(origin: Origin, engine: Engine, tmp_path: Path) -> None:
    origin.add("x.bin", 200 * KIB, disposition='attachment; filename="other.bin"')
    result = await fetch(engine, origin.url("x.bin"), tmp_path, filename="sub/mine.bin")
    assert result.path == (tmp_path / "sub" / "mine.bin").resolve()
    assert sha256_file(result.path) == origin.sha256("x.bin")


async def test_checksum_is_verified(origin: Origin, engine: Engine, tmp_path: Path) -> None:
    origin.add("c.bin", 1 * MIB)
    good = Checksum(algorithm="sha256", hexdigest=origin.sha256("c.bin"))
    result = await fetch(engine, origin.url("c.bin"), tmp_path, checksum=good)
    assert result.checksum == origin.sha256("c.bin")
    assert sha256_file(result.path) == origin.sha256("c.bin")


async def test_checksum_mismatch_leaves_nothing(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("c.bin", 1 * MIB)
    bad = Checksum(algorithm="md5", hexdigest="0" * 32)
    with pytest.raises(ContentMismatch, match="md5"):
        await fetch(engine, origin.url("c.bin"), tmp_path, checksum=bad)
    assert list(tmp_path.iterdir()) == []


async def test_existing_file_is_skipped_then_verified_then_forced(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    # Someone else's file under the name: left alone with skip (wget -n), replaced by overwrite.
    origin.add("e.bin", 300 * KIB)
    (tmp_path / "e.bin").write_bytes(b"old content")
    skip = OnExisting.SKIP
    skipped = await fetch(engine, origin.url("e.bin"), tmp_path, filename="e.bin", on_existing=skip)
    assert skipped.skipped and origin.requests_for("e.bin") == []
    bad = Checksum(algorithm="sha256", hexdigest=origin.sha256("e.bin"))
    with pytest.raises(ContentMismatch, match="--force"):
        await fetch(
            engine, origin.url("e.bin"), tmp_path, filename="e.bin", checksum=bad, on_existing=skip
        )
    overwrite = OnExisting.OVERWRITE
    forced = await fetch(
        engine, origin.url("e.bin"), tmp_path, filename="e.bin", on_existing=overwrite
    )
    assert not forced.skipped
    assert sha256_file(tmp_path / "e.bin") == origin.sha256("e.bin")


async def test_partial_locked_by_another_process_is_transient(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("l.bin", 200 * KIB)
    holder = PartFile((tmp_path / "l.bin").resolve())
    holder.open()
    try:
        with pytest.raises(Transient, match="elsewhere"):
            await fetch(engine, origin.url("l.bin"), tmp_path, filename="l.bin")
    finally:
        holder.close()
    result = await fetch(engine, origin.url("l.bin"), tmp_path, filename="l.bin")
    assert sha256_file(result.path) == origin.sha256("l.bin")


async def test_unwritable_output_is_a_local_error(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("w.bin", 100 * KIB)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(LocalError):
        await fetch(engine, origin.url("w.bin"), blocker / "out")
    assert os.listdir(tmp_path) == ["file"]


async def test_small_files_reuse_one_kept_alive_connection(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    names = [f"k{i}.bin" for i in range(6)]
    for name in names:
        origin.add(name, 20 * KIB)
    for name in names:
        result = await fetch(engine, origin.url(name), tmp_path)
        assert sha256_file(result.path) == origin.sha256(name)
    assert len({entry.peer_port for entry in origin.log}) == 1


@pytest.mark.parametrize("accepts_ranges", [True, False])
async def test_empty_file(
    origin: Origin, engine: Engine, tmp_path: Path, accepts_ranges: bool
) -> None:
    origin.add("empty.bin", 0, accepts_ranges=accepts_ranges)
    result = await fetch(engine, origin.url("empty.bin"), tmp_path)
    assert result.size == 0
    assert result.path.read_bytes() == b""
    assert leftovers(tmp_path) == []


async def test_symlink_under_the_files_name_cannot_lead_outside(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("target.bin", 10 * KIB)
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "target.bin").symlink_to(outside / "target.bin")
    with pytest.raises(BadRequest, match="outside"):
        await fetch(engine, origin.url("target.bin"), out)
    assert list(outside.iterdir()) == []


async def test_durable_commit_flushes_file_and_directory(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.add("durable.bin", 2 * MIB + 7)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    settings = TransferSettings(min_split_bytes=256 * KIB, fsync_files=True)
    async with Engine(settings) as durable_engine:
        result = await fetch(durable_engine, origin.url("durable.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("durable.bin")
    assert len(synced) >= 2, "the file before its rename and the directory after it"
    assert leftovers(tmp_path) == []
