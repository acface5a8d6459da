"""A full disk: a clear LocalError, nothing under the final name, and room again means success."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hauler.errors import DiskFull
from hauler.transfer.engine import Engine
from hauler.transfer.partfile import PartFile
from tests.transfer.conftest import KIB, MIB, fetch, sha256_file
from tests.transfer.origin import Origin


async def test_known_size_larger_than_the_disk_fails_before_downloading(
    origin: Origin, engine: Engine, small_disk: Path
) -> None:
    origin.add("big.bin", 4 * MIB)
    with pytest.raises(DiskFull) as raised:
        await fetch(engine, origin.url("big.bin"), small_disk)
    # What it needs and what there is, so the user knows how much to free.
    assert re.search(
        r"disk full: big\.bin needs 4\.0 MiB and .* has 1\.0 MiB free", str(raised.value)
    )
    # Nothing under the final name, and no empty .part left behind; the failed reservation is
    # given back: the small disk is as empty as before.
    assert list(small_disk.iterdir()) == []
    assert shutil.disk_usage(small_disk).used < 64 * KIB
    assert origin.bytes_sent("big.bin") < 4 * MIB, (
        "pre-allocation must fail before the body is fetched"
    )


@pytest.mark.parametrize("shape", [{"chunked": True}, {"close_delimited": True}])
async def test_disk_filling_up_mid_stream_fails_cleanly(
    origin: Origin, engine: Engine, small_disk: Path, shape: dict[str, bool]
) -> None:
    # No Content-Length: nothing to pre-allocate, so the disk fills up during the writes.
    origin.add("stream.bin", 4 * MIB, **shape)
    with pytest.raises(DiskFull, match="disk full"):
        await fetch(engine, origin.url("stream.bin"), small_disk)
    # A stream of unknown length can never resume: its .part is removed, the disk is free.
    assert list(small_disk.iterdir()) == []
    assert shutil.disk_usage(small_disk).used < 64 * KIB


async def test_a_file_that_fits_still_downloads(
    origin: Origin, engine: Engine, small_disk: Path
) -> None:
    origin.add("fits.bin", 300 * KIB)
    result = await fetch(engine, origin.url("fits.bin"), small_disk)
    assert sha256_file(result.path) == origin.sha256("fits.bin")


def test_no_room_to_grow_a_partial_keeps_its_bytes(small_disk: Path) -> None:
    part = PartFile(small_disk / "resume.bin")
    part.open()
    try:
        data = bytes(range(256)) * 1024  # 256 KiB already downloaded
        part.write(0, data)
        with pytest.raises(DiskFull, match=r"needs 4\.0 MiB"):
            part.preallocate(4 * MIB)
        assert part.size_on_disk() == len(data)
    finally:
        part.close()
    assert (small_disk / "resume.bin.part").read_bytes() == data
