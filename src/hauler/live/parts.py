"""The files a recording is written into: MPEG-TS segments appended to the current part, a new
part every ``split_s`` of media (counted by the segments' durations) or when asked (a
reconnect, a discontinuity, a gap), each part closed and flushed before it is reported.

A file of concatenated TS segments of one encoder is itself a playable TS file, so a part is
playable at every moment: a worker killed mid-part leaves a playable ``.part`` file. A part is
written under ``NAME.part`` (``NAME``: base name, the part's start time in UTC, its number,
``.ts``) in a directory reached without following a link (``hauler.nofollow``), created
``O_EXCL | O_NOFOLLOW``; a closed part is reported with its temporary and its final name, for
the verify and finalize stages to probe and rename it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hauler import nofollow
from hauler.errors import DiskFull, LocalError
from hauler.naming import MAX_COUNTER, MAX_FILE_NAME_BYTES, numbered, safe_name

TEMP_SUFFIX = ".part"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class ClosedPart:
    """A part complete and flushed under ``staged``; ``path`` is the name it is meant to take.

    ``started_at``: when its first segment began, epoch seconds (UTC); ``duration_s``: the sum
    of its segments' durations; ``first_sequence``/``last_sequence``: their media sequence
    numbers when the source has them (HLS).
    """

    path: Path
    staged: Path
    index: int
    started_at: float
    duration_s: float
    bytes: int
    segments: int
    first_sequence: int | None = None
    last_sequence: int | None = None

    def record(self, path: Path | None = None) -> dict[str, Any]:
        """The ``{path, started_at, duration_s, bytes}`` a job's result lists (``path``: where
        the part ended up, when the finalize stage gave it another name)."""
        return {
            "path": str(path or self.path),
            "started_at": utc_stamp(self.started_at, "%Y-%m-%dT%H:%M:%S") + "Z",
            "duration_s": round(self.duration_s, 3),
            "bytes": self.bytes,
        }


def utc_stamp(epoch_s: float, pattern: str = "%Y%m%dT%H%M%SZ") -> str:
    """``epoch_s`` as UTC text (by default ``20240501T100000Z``, which sorts as it reads)."""
    return time.strftime(pattern, time.gmtime(epoch_s))


def part_name(base_name: str, started_at: float, index: int, extension: str = "ts") -> str:
    """``BASE.20240501T100000Z.part001.ts``: the base made safe and shortened so that the whole
    name (and the names derived from it) fits a file system's 255 bytes."""
    tail = f".{utc_stamp(started_at)}.part{index:03d}.{extension}"
    base = safe_name(base_name.replace("/", "_"))
    room = MAX_FILE_NAME_BYTES - len(tail.encode())
    return base.encode()[:room].decode("utf-8", "ignore").rstrip(". ") + tail


@dataclass(slots=True)
class OpenPart:
    """The part being written (``staged``: its temporary name, ``name``: its final one)."""

    fd: int
    name: str
    staged: str
    index: int
    started_at: float
    duration_s: float = 0.0
    bytes: int = 0
    segments: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None


class PartWriter:
    """Writes a recording into parts in ``directory`` named from ``base_name``.

    ``append`` opens a part at its first segment and closes it once it holds ``split_s`` of
    media; ``cut`` closes the current part at once (the next segment starts a new one);
    ``close`` closes it for good. Each returns the part it closed, if any (also in ``closed``).
    """

    def __init__(
        self,
        directory: Path,
        base_name: str,
        *,
        split_s: float,
        extension: str = "ts",
        first_index: int = 1,
        on_open: Callable[[OpenPart], Awaitable[None]] | None = None,
        on_append: Callable[[OpenPart], Awaitable[None]] | None = None,
    ) -> None:
        if split_s <= 0:
            raise ValueError("split_s must be positive")
        self.directory = directory
        self.base_name = base_name
        self.split_s = split_s
        self.extension = extension
        self.closed: list[ClosedPart] = []
        self._next_index = first_index
        # Told of each part before its first byte: a worker killed mid-part leaves a staged
        # file that whoever continues the recording must find (and probe, and list).
        self.on_open = on_open
        # Told after each segment is written (before a cut): what the open part holds now.
        self.on_append = on_append
        self._part: OpenPart | None = None
        self._dir_fd: int | None = None
        self._is_closed = False

    @property
    def current(self) -> OpenPart | None:
        """The part being written, if any."""
        return self._part

    @property
    def bytes_written(self) -> int:
        """Bytes of every part so far, the open one included."""
        open_bytes = self._part.bytes if self._part else 0
        return sum(part.bytes for part in self.closed) + open_bytes

    async def append(
        self, data: bytes, duration_s: float, started_at: float, sequence: int | None = None
    ) -> ClosedPart | None:
        """Add one segment (``duration_s`` of media beginning at ``started_at``, epoch UTC);
        the part this closed, when it reached ``split_s``."""
        if self._is_closed:
            raise RuntimeError("the part writer is closed")
        part = self._part
        if part is None:
            part = self._open(started_at)
            if self.on_open is not None:
                await self.on_open(part)
        self._write(part, data)
        if part.segments == 0:
            part.first_sequence = sequence
        part.last_sequence = sequence
        part.duration_s += duration_s
        part.bytes += len(data)
        part.segments += 1
        if self.on_append is not None:
            await self.on_append(part)
        if part.duration_s >= self.split_s:
            return await self.cut()
        return None

    async def cut(self) -> ClosedPart | None:
        """Close the current part now (flushed to disk); None when none is open."""
        part, self._part = self._part, None
        if part is None:
            return None
        # The fsync may take a while on a busy disk: off the loop, and a cancel waits for it
        # (the part must be whole and its descriptor closed whatever happens to the task).
        work = asyncio.ensure_future(asyncio.to_thread(self._flush, part.fd))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait({work})
            if work.exception() is None:
                self.closed.append(self._closed(part))
            raise
        closed = self._closed(part)
        self.closed.append(closed)
        return closed

    async def close(self) -> ClosedPart | None:
        """Close the current part and the writer (idempotent): the part closed, if any."""
        try:
            return await self.cut()
        finally:
            self._is_closed = True
            if self._dir_fd is not None:
                os.close(self._dir_fd)
                self._dir_fd = None

    def _open(self, started_at: float) -> OpenPart:
        index, self._next_index = self._next_index, self._next_index + 1
        name = part_name(self.base_name, started_at, index, self.extension)
        dir_fd = self._directory()
        for counter in range(MAX_COUNTER + 1):
            candidate = numbered(name, counter) if counter else name
            try:
                fd = os.open(candidate + TEMP_SUFFIX, _CREATE, 0o644, dir_fd=dir_fd)
            except FileExistsError:  # a leftover, or a planted link: never written through
                continue
            except OSError as exc:
                raise _local_error(exc, self.directory / candidate) from exc
            self._part = OpenPart(fd, candidate, candidate + TEMP_SUFFIX, index, started_at)
            return self._part
        raise LocalError(f"no free name for {name} in {self.directory}")

    def _directory(self) -> int:
        if self._dir_fd is None:
            try:
                self._dir_fd = nofollow.open_directory(self.directory)
            except OSError as exc:
                raise _local_error(exc, self.directory) from exc
        return self._dir_fd

    def _write(self, part: OpenPart, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(part.fd, view) :]
        except OSError as exc:
            raise _local_error(exc, self.directory / part.staged) from exc

    def _flush(self, fd: int) -> None:
        try:
            os.fsync(fd)
            if self._dir_fd is not None:
                nofollow.fsync_directory(self._dir_fd)
        except OSError as exc:
            raise _local_error(exc, self.directory) from exc
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _closed(self, part: OpenPart) -> ClosedPart:
        return ClosedPart(
            path=self.directory / part.name,
            staged=self.directory / part.staged,
            index=part.index,
            started_at=part.started_at,
            duration_s=part.duration_s,
            bytes=part.bytes,
            segments=part.segments,
            first_sequence=part.first_sequence,
            last_sequence=part.last_sequence,
        )


def _local_error(exc: OSError, path: Path) -> LocalError:
    """An OS error writing a part as the taxonomy's: disk full, a link, or another local one."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return DiskFull(f"no space left for {path}: {reason}")
    if nofollow.is_link_error(exc):
        return nofollow.refused(path)
    return LocalError(f"cannot write {path}: {reason}")
