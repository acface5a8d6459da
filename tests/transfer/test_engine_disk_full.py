"""A full disk: a clear LocalError, nothing under the final name, and room again means success."""

from __future__ import annotations

from pathlib import Path

import pytest

from hauler.errors import LocalError
from hauler.transfer.engine import Engine
from tests.transfer.conftest import KIB, MIB, fetch, sha256_file
from tests.transfer.origin import Origin


async def test_known_size_larger_than_the_disk_fails_before_downloading(
    origin: Origin, engine: Engine, small_disk: Path
) -> None:
    origin.add("big.bin", 4 * MIB)
    with pytest.raises(LocalError, match="disk full"):
        await fetch(engine, origin.url("big.bin"), small_disk)
    assert not (small_disk / "big.bin").exists()
    assert origin.bytes_sent("big.bin") < 4 * MIB, (
        "pre-allocation must fail before the body is fetched"
    )


async def test_disk_filling_up_mid_stream_fails_cleanly(
    origin: Origin, engine: Engine, small_disk: Path
) -> None:
    # No Content-Length: nothing to pre-allocate, so the disk fills up during the writes.
    origin.add("stream.bin", 3 * MIB, chunked=True)
    with pytest.raises(LocalError, match="disk full"):
        await fetch(engine, origin.url("stream.bin"), small_disk)
    assert not (small_disk / "stream.bin").exists()


async def test_a_file_that_fits_still_downloads(
    origin: Origin, engine: Engine, small_disk: Path
) -> None:
    origin.add("fits.bin", 300 * KIB)
    result = await fetch(engine, origin.url("fits.bin"), small_disk)
    assert sha256_file(result.path) == origin.sha256("fits.bin")
