"""The fleet's control flags as one worker sees them: paused (store or PAUSE file), stop asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hauler.store.base import FleetControl

PAUSE_FILE = "PAUSE"


@dataclass(frozen=True, slots=True)
class Flags:
    """One reading of the flags."""

    is_paused: bool
    is_stop_requested: bool


async def read_flags(
    store: FleetControl, worker: str, output_dir: Path, stop_seen_at_start: float | None
) -> Flags:
    """Read the flags for ``worker``.

    A stop counts when the store holds another request than the one it held when the worker
    started (``stop_seen_at_start``). Comparing the request's time with the worker's own clock
    instead would let a worker whose clock runs ahead of the requester's ignore every stop.
    """
    is_paused = (output_dir / PAUSE_FILE).exists() or await store.is_paused(worker)
    stop_at = await store.stop_requested_at()
    return Flags(is_paused, stop_at is not None and stop_at != stop_seen_at_start)
