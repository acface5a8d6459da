"""Whether a worker's output directory can take new jobs, once a job found it full or unwritable.

A full disk is not the jobs' fault: a worker that kept claiming would fail (or retry) every job
of the queue in minutes. After a ``DiskFull`` it takes no new job until ``min_free_bytes`` are
free again, looking at most every ``check_s``; running jobs go on. A directory that cannot be
written (permission denied, a read-only file system) is the same: no new job until a probe file
can be created there again.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from hauler.clock import Clock
from hauler.config import MIB
from hauler.errors import LocalError

logger = logging.getLogger(__name__)

_UNWRITABLE = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
}


def unwritable_reason(error: BaseException) -> str | None:
    """``permission denied`` or ``read-only file system`` when ``error`` is a ``LocalError``
    raised for such an ``OSError`` (``partfile.local_error`` chains it), else None."""
    cause = error.__cause__
    if isinstance(error, LocalError) and isinstance(cause, OSError):
        return _UNWRITABLE.get(cause.errno or 0)
    return None


def probe_writable(directory: Path) -> None:
    """Create and remove a file in ``directory``; the ``OSError`` when that fails.

    The real test: mode bits do not stop root, a read-only mount or an immutable directory
    does; ``os.access`` would answer for neither.
    """
    fd, name = tempfile.mkstemp(prefix=".hauler-probe-", dir=directory)
    os.close(fd)
    os.unlink(name)


def prepare_output_dir(directory: Path) -> str | None:
    """Create ``directory`` (and its parents) and check that files can be written there;
    None when they can, else a one-line reason for the user."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output directory {directory}: {_reason(exc)}"
    if not directory.is_dir():
        return f"the output directory {directory} is not a directory"
    try:
        probe_writable(directory)
    except OSError as exc:
        return f"cannot write in the output directory {directory}: {_reason(exc)}"
    return None


def _reason(exc: OSError) -> str:
    return _UNWRITABLE.get(exc.errno or 0) or exc.strerror or type(exc).__name__


class DiskRoom:
    """The output directory's room for new jobs: free space, and whether it can be written."""

    def __init__(self, directory: Path, min_free_bytes: int, check_s: float, clock: Clock) -> None:
        self._directory = directory
        self._min_free_bytes = min_free_bytes
        self._check_s = check_s
        self._clock = clock
        self._checked_at = 0.0
        self.is_full = False
        self.unwritable: str | None = None  # why the directory cannot be written, if it cannot

    @property
    def is_blocked(self) -> bool:
        """True while no new job should be claimed (full or unwritable)."""
        return self.is_full or self.unwritable is not None

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

    def mark_unwritable(self, reason: str) -> None:
        """A job could not write its files: stop taking jobs until the directory is writable."""
        if self.unwritable is None:
            logger.warning(
                "cannot write under %s (%s): no new jobs until it is writable "
                "(checking every %.0fs)",
                self._directory,
                reason,
                self._check_s,
            )
        self.unwritable = reason
        self._checked_at = self._clock.monotonic()

    def has_room(self) -> bool:
        """True unless the directory was found full or unwritable and is not fixed yet."""
        if not self.is_blocked:
            return True
        now = self._clock.monotonic()
        if now - self._checked_at < self._check_s:
            return False
        self._checked_at = now
        if self.unwritable is not None and not self._is_writable_again():
            return False
        return not self.is_full or self._has_free_space_again()

    def _is_writable_again(self) -> bool:
        try:
            probe_writable(self._directory)
        except OSError:
            return False
        logger.info("%s is writable again: taking jobs", self._directory)
        self.unwritable = None
        return True

    def _has_free_space_again(self) -> bool:
        try:
            free = shutil.disk_usage(self._directory).free
        except OSError:
            return False
        if free < self._min_free_bytes:
            return False
        logger.info("room again under %s (%.0f MiB free): taking jobs", self._directory, free / MIB)
        self.is_full = False
        return True
