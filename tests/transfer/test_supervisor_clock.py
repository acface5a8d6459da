"""The supervisor of a download ticks on the engine's clock, not on the event loop's timers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hauler.clock import FakeClock
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest
from tests.transfer.conftest import KIB, MIB, fast_settings, sha256_file
from tests.transfer.origin import Fault, Origin

SILENT_AT = 600 * KIB


class FirstBytes:
    """A progress sink that says when the first batch of bytes was written."""

    def __init__(self) -> None:
        self.flowing = asyncio.Event()

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        return None

    def advanced(self, nbytes: int) -> None:
        self.flowing.set()


async def test_a_silent_lane_is_cut_when_the_engines_clock_moves(
    origin: Origin, tmp_path: Path
) -> None:
    """On a fake clock the stall cut comes from the test moving time: the supervisor waits on
    the engine's clock (and on nothing else) while the lane sits in a silent read."""
    origin.add("quiet.bin", 1 * MIB, faults={1: Fault(stall_after=SILENT_AT)})
    clock = FakeClock()
    settings = fast_settings(
        connections=1, lowest_speed_bps=1024, stall_window_s=0.3, read_timeout_s=60.0
    )
    sink = FirstBytes()
    async with Engine(settings, clock) as engine:
        request = TransferRequest(url=origin.url("quiet.bin"), output_dir=tmp_path)
        download = asyncio.create_task(engine.download(request, sink))
        try:
            async with asyncio.timeout(10):  # the bound of the test, not a timing assertion
                await sink.flowing.wait()
            assert clock.pending() == 1, "the supervisor's tick waits on the engine's clock"
            for _ in range(50):  # 5 s of fake time: a stall window is 0.3 s
                clock.advance(0.1)
                done, _ = await asyncio.wait({download}, timeout=0.1)
                if done:
                    break
            assert download.done(), "moving the clock cut the silent lane"
            result = await download
        finally:
            download.cancel()
    assert sha256_file(result.path) == origin.sha256("quiet.bin")
    ranges = [r.range or "" for r in origin.requests_for("quiet.bin")]
    assert len(ranges) == 2 and ranges[1].startswith(f"bytes={SILENT_AT}-"), ranges
    assert result.bytes_fetched == 1 * MIB
