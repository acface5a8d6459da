"""max_size_bytes holds while streaming: a body of unknown length stops at the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from hauler.errors import TooLarge
from hauler.transfer.engine import Engine
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Origin

UNKNOWN_LENGTH = [{"chunked": True}, {"close_delimited": True}]


@pytest.mark.parametrize("shape", UNKNOWN_LENGTH, ids=["chunked", "close-delimited"])
async def test_an_unknown_length_body_over_the_limit_is_too_large(
    origin: Origin, tmp_path: Path, shape: dict[str, bool]
) -> None:
    origin.add("endless.bin", 8 * MIB, **shape)
    async with Engine(fast_settings(max_size_bytes=1 * MIB)) as engine:
        with pytest.raises(TooLarge, match=r"endless\.bin sent more than the limit of 1048576"):
            await fetch(engine, origin.url("endless.bin"), tmp_path)
    assert list(tmp_path.iterdir()) == [], "no .part and no final file"


@pytest.mark.parametrize("shape", UNKNOWN_LENGTH, ids=["chunked", "close-delimited"])
async def test_an_unknown_length_body_of_exactly_the_limit_is_kept(
    origin: Origin, tmp_path: Path, shape: dict[str, bool]
) -> None:
    origin.add("edge.bin", 300 * KIB, **shape)
    async with Engine(fast_settings(max_size_bytes=300 * KIB)) as engine:
        result = await fetch(engine, origin.url("edge.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("edge.bin")
    assert result.size == 300 * KIB


async def test_a_known_size_over_the_limit_is_refused_before_the_body(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("big.bin", 4 * MIB)
    async with Engine(fast_settings(max_size_bytes=1 * MIB)) as engine:
        with pytest.raises(TooLarge, match="is 4194304 bytes, over the limit of 1048576"):
            await fetch(engine, origin.url("big.bin"), tmp_path)
    assert list(tmp_path.iterdir()) == []
