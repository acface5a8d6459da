"""The in-place partial file ``<name>.part``, its control file ``<name>.part.json``, the commit.

Bytes go straight to their offset with ``os.pwrite`` into one pre-allocated file: no chunk files,
no assembly copy. The control file records validators and per-segment progress and is replaced
atomically (write a temp file, rename). An exclusive ``flock`` on the ``.part`` file keeps two
processes from writing the same partial; the kernel frees it when a process dies, even by kill -9.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from hauler import nofollow
from hauler.config import MIB
from hauler.errors import DiskFull, LocalError, Transient
from hauler.naming import MAX_COUNTER, numbered
from hauler.redact import printable
from hauler.transfer import marks
from hauler.transfer.controlcheck import MAX_TEXT_CHARS, checked_fields
from hauler.transfer.controlfiles import CONTROL_SUFFIX
from hauler.transfer.segments import Segment

_log = logging.getLogger(__name__)

CONTROL_VERSION = 1
# Smaller files are not pre-allocated: their writes are few and the syscall is not free.
PREALLOCATE_MIN_BYTES = MIB
# The temp-file suffixes the control-file writers use (download.py: foreground and background).
CONTROL_TMP_SUFFIXES = (".tmp", ".tmp-bg")


class PartBusy(Transient):
    """Another download (of this process or another) holds the ``.part`` file's lock."""


@dataclass(frozen=True, slots=True)
class Validators:
    """What pins one version of a remote file.

    ``has_strong_date``: Last-Modified is a strong validator (at least a second before the
    response's Date, RFC 9110 8.8.2.2), so it may go in If-Range. Not stored in control files:
    a resumed probe tries it, and a server that disagrees answers 200, which starts over.
    """

    size: int | None
    etag: str | None
    last_modified: str | None
    has_strong_date: bool = field(default=True, compare=False)

    def same_version(self, other: Validators) -> bool:
        """True when nothing says the two differ: the same size, and the same ETag (else the
        same Last-Modified) when either side has one.

        ETags are compared without their weakness (``W/"x"`` and ``"x"`` are one version):
        Apache marks a file's ETag weak while its mtime is under a second old, so one download
        sees both. With neither validator on either side, the same size is the same version:
        that is all such a server (http.server, many dynamic ones) says about a file. Whether
        that was a real check is ``is_pinned``'s question.
        """
        if self.size != other.size:
            return False
        if self.etag or other.etag:
            return _opaque_tag(self.etag) == _opaque_tag(other.etag)
        if self.last_modified or other.last_modified:
            return self.last_modified == other.last_modified
        return True

    @property
    def is_pinned(self) -> bool:
        """True when an ETag or Last-Modified pins the version (not the size alone)."""
        return bool(self.etag or self.last_modified)

    @property
    def if_range(self) -> str | None:
        """The If-Range value: a strong ETag, else a strong Last-Modified, else None.

        A weak validator in If-Range never matches (RFC 9110 13.1.5): Apache then answers every
        range with the whole file. Without If-Range each 206 is still checked against these
        validators before a byte of it is written.
        """
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified if self.has_strong_date else None


def _opaque_tag(etag: str | None) -> str | None:
    """The ETag without its weakness indicator."""
    return etag[2:] if etag is not None and etag.startswith("W/") else etag


@dataclass(frozen=True, slots=True)
class ControlState:
    """A control file's content."""

    url: str
    validators: Validators
    segments: list[Segment]
    # ``marks.url_key`` of the requested URL (``url`` is where redirects ended): whose it is.
    source: str | None = None

    def to_json(self) -> str:
        """The file's text."""
        data = {
            "version": CONTROL_VERSION,
            "url": self.url,
            "size": self.validators.size,
            "etag": self.validators.etag,
            "last_modified": self.validators.last_modified,
            "segments": [[s.start, s.end, s.pos] for s in self.segments],
        }
        if self.source is not None:
            data["source"] = self.source
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ControlState | None:
        """Parse; None when the text is not a usable control file (see ``checked_fields``)."""
        fields = checked_fields(text, CONTROL_VERSION)
        if fields is None:
            return None
        segments = [Segment(start, end, pos) for start, end, pos in fields.segments]
        validators = Validators(fields.size, fields.etag, fields.last_modified)
        return cls(fields.url, validators, segments, fields.source)


_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def local_error(exc: OSError, path: Path) -> LocalError:
    """An ``OSError`` as the taxonomy's ``LocalError`` with a message a user can act on."""
    error_type = DiskFull if exc.errno in _NO_SPACE else LocalError
    return error_type(f"{_reason(exc)}: {path}")


class PartFile:
    """An open, locked ``<final>.part`` file and its control file.

    Every name is opened relative to a descriptor of the final file's directory and never
    through a symbolic link (see ``nofollow``); ``source`` (``marks.url_key`` of the URL) marks
    the partial and then the final file as this download's.
    """

    def __init__(self, final_path: Path, source: str | None = None) -> None:
        self.final_path = final_path
        self.path = final_path.with_name(final_path.name + ".part")
        self.source = source
        self.fd = -1
        self.dir_fd = -1
        # Whether a control file may exist: saves failing syscalls per small file.
        self.has_control_file = True
        self.is_new = False
        self.is_adopted = False

    @functools.cached_property
    def control_path(self) -> Path:
        """``<final>.part.json`` (built on first use: most small files never need it)."""
        return self.final_path.with_name(self.final_path.name + CONTROL_SUFFIX)

    def open(self, adopt: bool = False) -> None:
        """Create or open the ``.part`` file and lock it; ``PartBusy`` if another has it.

        With ``adopt``, a final file already there becomes the partial when there is none
        (its bytes are taken as the first of this download: wget -c).
        """
        self.dir_fd = self._directory()
        try:
            if adopt:
                self.is_adopted = self._adopt_final()
            self.fd, self.is_new = nofollow.open_regular(self.dir_fd, self.path.name)
        except OSError as exc:
            self.close()
            raise _write_error(exc, self.path) from exc
        if self.is_new:
            self.has_control_file = False
        if (self.is_new or self.is_adopted) and self.source is not None:
            marks.mark_partial(self.fd, self.source)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self.close()
            raise PartBusy(f"{self.final_path.name} is being downloaded elsewhere") from exc

    def _adopt_final(self) -> bool:
        """Rename the final file to the ``.part`` name unless a ``.part`` exists (a link to
        it then an unlink: never replaces one); True when it did."""
        dir_fd, final, part = self.dir_fd, self.final_path.name, self.path.name
        try:
            os.link(final, part, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except (FileExistsError, FileNotFoundError):
            return False  # a partial is there already, or the file went away meanwhile
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                raise
            if os.path.lexists(self.path):  # no hard links here: check, then rename
                return False
            os.rename(final, part, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return True
        os.unlink(final, dir_fd=dir_fd)
        return True

    def close(self) -> None:
        """Close the file, which releases the lock."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def load_control(self) -> ControlState | None:
        """The control file's state, or None when there is none usable."""
        if self.is_new:
            return None
        try:
            # One byte over the limit: too long, refused by ``checked_fields``.
            text = nofollow.read_text(self.dir_fd, self.control_path.name, MAX_TEXT_CHARS + 1)
        except UnicodeDecodeError:
            text = ""
        except OSError as exc:
            if nofollow.is_link_error(exc):
                raise nofollow.refused(self.control_path) from exc
            text = None
        if text is None:
            self.has_control_file = False
            return None
        state = ControlState.from_json(text)
        if state is None:
            _log.info("discarding the unusable control file %s: starting over", self.control_path)
        return state

    def is_ours(self, control: ControlState | None, url: str) -> bool:
        """Whether this (existing) partial belongs to ``url``: its mark or its control file
        says so (a control file from before marks: its URL)."""
        if self.is_new or self.is_adopted:
            return True
        mark = marks.read_fd(self.fd)
        if mark is not None:
            return mark.source == self.source
        if control is None:
            # An empty partial with neither a mark nor a control file holds no one's bytes: a
            # process killed between creating and marking it left it (the kill -9 chaos test
            # hit that window), and taking the next name for it would leave x.1.bin behind.
            return os.fstat(self.fd).st_size == 0
        if control.source is not None:
            return control.source == self.source
        return marks.url_key(control.url) == marks.url_key(url)

    def save_control(self, state: ControlState) -> None:
        """Atomically replace the control file."""
        self.write_control_text(state.to_json(), ".tmp")

    def write_control_text(self, text: str, tmp_suffix: str) -> None:
        """Atomically replace the control file with ``text`` (safe to call from a thread).

        Concurrent writers must use different ``tmp_suffix`` values.
        """
        self.has_control_file = True
        name = self.control_path.name
        try:
            nofollow.replace_text(self._directory(), name, name + tmp_suffix, text)
        except OSError as exc:
            raise _write_error(exc, self.control_path) from exc

    def _directory(self) -> int:
        """The directory's descriptor (opened again after ``close``: a late ``discard``)."""
        if self.dir_fd < 0:
            try:
                self.dir_fd = nofollow.open_directory(self.final_path.parent)
            except OSError as exc:
                raise local_error(exc, Path(exc.filename or self.final_path.parent)) from exc
        return self.dir_fd

    def size_on_disk(self) -> int:
        """The ``.part`` file's current size."""
        try:
            return os.fstat(self.fd).st_size
        except OSError as exc:
            raise local_error(exc, self.path) from exc

    def reset(self, size: int | None) -> None:
        """Empty the file and pre-allocate ``size`` bytes (when known)."""
        try:
            if not self.is_new:
                os.ftruncate(self.fd, 0)
            if size and size >= PREALLOCATE_MIN_BYTES:
                self.preallocate(size)
        except OSError as exc:
            raise local_error(exc, self.path) from exc
        self._drop_control()

    def _drop_control(self) -> None:
        if self.has_control_file:
            # The temp files too: a writer killed (kill -9) mid-write leaves its temp behind.
            self._unlink(CONTROL_SUFFIX, *(CONTROL_SUFFIX + s for s in CONTROL_TMP_SUFFIXES))
            self.has_control_file = False

    def _unlink(self, *suffixes: str) -> None:
        dir_fd = self._directory()
        for suffix in suffixes:
            nofollow.unlink(dir_fd, self.final_path.name + suffix)

    def preallocate(self, size: int) -> None:
        """Reserve ``size`` bytes so that a full disk shows now, not at 99 %.

        ``DiskFull`` says how much the file needs and how much is free.
        """
        size_before = os.fstat(self.fd).st_size
        try:
            os.posix_fallocate(self.fd, 0, size)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                # Give back what the failed reservation took beyond the bytes already there.
                os.ftruncate(self.fd, size_before)
                raise DiskFull(self._no_room(size, exc)) from exc
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            os.ftruncate(self.fd, size)

    def _no_room(self, size: int, exc: OSError) -> str:
        stats = os.fstatvfs(self.fd)
        free_bytes = stats.f_bavail * stats.f_frsize
        return (
            f"{_reason(exc)}: {self.final_path.name} needs {size / MIB:.1f} MiB and "
            f"{self.path.parent} has {free_bytes / MIB:.1f} MiB free; free some space "
            "(or choose another output directory) and try again"
        )

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write all of ``data`` at ``offset``."""
        try:
            written = os.pwrite(self.fd, data, offset)
            while written < len(data):
                view = memoryview(data)[written:]
                written += os.pwrite(self.fd, view, offset + written)
        except OSError as exc:
            raise local_error(exc, self.path) from exc

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (a stream of unknown length ended)."""
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise local_error(exc, self.path) from exc

    def commit(self, durable: bool = False, may_replace: bool = False) -> Path:
        """Mark the verified ``.part`` complete, rename it to its final name, then drop the
        control file; the path it now has.

        With ``may_replace`` (``--allow-overwrite``) the rename replaces the entry under the
        final name (a link there is replaced, never followed). Without, a file that appeared
        under the name while this one downloaded is never replaced: the file takes the next
        free ``name.N.ext`` instead. With ``durable``, the bytes are flushed to disk before the
        rename and the directory entry after it, so that after a power loss the final name
        holds the whole file or is absent.
        """
        try:
            if self.source is not None:
                marks.mark_complete(self.fd, self.source, os.fstat(self.fd).st_size)
            if durable:
                os.fsync(self.fd)
            dir_fd = self._directory()
            if may_replace:
                final_name = self.final_path.name
                os.replace(self.path.name, final_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            else:
                final_name = self._rename_to_free_name(dir_fd)
            if durable:
                nofollow.fsync_directory(dir_fd)
        except OSError as exc:
            raise local_error(exc, self.final_path) from exc
        self._drop_control()
        return self.final_path.with_name(final_name)

    def _rename_to_free_name(self, dir_fd: int) -> str:
        """Rename the ``.part`` to the final name, or to the first free numbered one."""
        name = self.final_path.name
        for counter in range(MAX_COUNTER + 1):
            candidate = numbered(name, counter) if counter else name
            try:
                nofollow.rename_no_replace(dir_fd, self.path.name, candidate)
            except FileExistsError:
                continue
            if counter:
                _log.warning(
                    "%s appeared while it downloaded: this file is %s", name, printable(candidate)
                )
            return candidate
        raise FileExistsError(errno.EEXIST, "no free name up to the counter's limit", name)

    def discard(self) -> None:
        """Delete the ``.part`` and control files (their bytes are wrong)."""
        temps = (CONTROL_SUFFIX + suffix for suffix in CONTROL_TMP_SUFFIXES)
        # When the directory itself is gone or unreachable, nothing of ours is left in it.
        with contextlib.suppress(LocalError):
            self._unlink(".part", CONTROL_SUFFIX, *temps)


def _write_error(exc: OSError, path: Path) -> LocalError:
    """``local_error``, but a symbolic link where hauler writes is refused by name."""
    if nofollow.is_link_error(exc):
        return nofollow.refused(path)
    return local_error(exc, path)
