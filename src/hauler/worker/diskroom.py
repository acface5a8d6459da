"""Whether a worker's output disk has room for new jobs, once a job found it full.

A full disk is not the jobs' fault: a worker that kept claiming would fail (or retry) every job
of the queue in minutes. After a ``DiskFull`` it takes no new job until ``min_free_bytes`` are
free again, looking at most every ``check_s``; running jobs go on.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hauler.clock import Clock
from hauler.config import MIB

logger = logging.getLogger(__name__)


class DiskRoom:
    """The output directory's free space, as far as claiming new jobs is concerned."""

    def __init__(self, directory: Path, min_free_bytes: int, check_s: float, clock: Clock) -> None:
        self._directory = directory
        self._min_free_bytes = min_free_bytes
        self._check_s = check_s
        self._clock = clock
        self._checked_at = 0.0
        self.is_full = False

    def mark_full(self) -> None:
        """A job ran out of space: stop taking jobs until there is room."""
        if not self.is_full:
            logger.warning(
                "disk full under %s: no new jobs until %.0f MiB are free (checking every %.0fs)",
                self._directory,
                self._min_free_bytes / MIB,
                self._check_s,
            )
        self.is_full = True
        self._checked_at = self._clock.monotonic()

    def has_room(self) -> bool:
        """True unless the disk was found full and has not got ``min_free_bytes`` back yet."""
        if not self.is_full:
            return True
        now = self._clock.monotonic()
        if now - self._checked_at < self._check_s:
            return False
        self._checked_at = now
        try:
            free = shutil.disk_usage(self._directory).free
        except OSError:
            return False
        if free < self._min_free_bytes:
            return False
        logger.warning(
            "room again under %s (%.0f MiB free): taking jobs", self._directory, free / MIB
        )
        self.is_full = False
        return True
