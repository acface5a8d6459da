"""A server that trickles (a byte now and then) no longer holds a lane forever."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hauler.errors import Stalled
from hauler.transfer.engine import Engine
from tests.transfer.conftest import KIB, fast_settings, fetch, leftovers, sha256_file
from tests.transfer.origin import Origin


def trickle_settings() -> dict[str, object]:
    """A short stall window so that the test takes seconds; the rule is the real one."""
    return {"lowest_speed_bps": 1024, "stall_window_s": 0.3, "max_stall_reconnects": 3}


async def test_a_trickling_server_fails_the_file_as_stalled(origin: Origin, tmp_path: Path) -> None:
    # 20 B/s on every connection: each reconnect makes progress, which used to reset the count.
    origin.add("drip.bin", 256 * KIB, trickle_s=0.05)
    async with Engine(fast_settings(connections=2, **trickle_settings())) as engine:
        with pytest.raises(Stalled) as raised:
            async with asyncio.timeout(60):  # the bound of the test, not a timing assertion
                await fetch(engine, origin.url("drip.bin"), tmp_path)
    assert str(raised.value).endswith("kept below 1024 B/s for 3 reconnects; giving up")
    assert "drip.bin" in str(raised.value)
    assert origin.bytes_sent("drip.bin") > 0, "the server did trickle"
    # Every byte that arrived is kept for a later attempt.
    assert leftovers(tmp_path) == ["drip.bin.part", "drip.bin.part.json"]


async def test_a_slow_but_steady_server_is_not_given_up(origin: Origin, tmp_path: Path) -> None:
    # Above the lowest speed: no stall at all, the file completes.
    origin.add("steady.bin", 256 * KIB, rate_bps=256 * KIB)
    async with Engine(fast_settings(connections=2, **trickle_settings())) as engine:
        result = await fetch(engine, origin.url("steady.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("steady.bin")
