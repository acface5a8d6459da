"""The fleet's control flags as one worker sees them: paused (store or PAUSE file), stop asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hauler.store.base import Store

PAUSE_FILE = "PAUSE"


@dataclass(frozen=True, slots=True)
class Flags:
    """One reading of the flags."""

    is_paused: bool
    is_stop_requested: bool


async def read_flags(store: Store, worker: str, output_dir: Path, started_at: float) -> Flags:
    """Read the flags for ``worker``: a stop counts only when requested after ``started_at``."""
    is_paused = (output_dir / PAUSE_FILE).exists() or await store.is_paused(worker)
    stop_at = await store.stop_requested_at()
    return Flags(is_paused, stop_at is not None and stop_at > started_at)
