"""Files in the output directory, reached through a directory descriptor and never through a
symbolic link.

Anyone who can write into the output directory could plant a link under a name hauler is about
to create (``NAME.part``, its control file, their temporary files) and have the download, or
control-file JSON, written wherever the link points. So every such name is opened with
``O_NOFOLLOW`` (and ``O_EXCL`` when it is created) relative to a descriptor of its directory,
and that directory is reached from ``/`` one component at a time, none of them a link: a link
swapped in after ``naming.safe_path`` resolved the path is refused too.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

from hauler.errors import LocalError

_log = logging.getLogger(__name__)

# O_PATH (Linux) needs only search permission on a directory, as a path lookup does.
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_RDWR = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_CREAT | os.O_EXCL
# A file can vanish between "it exists" and opening it (another process committed it): retry.
_OPEN_TRIES = 3


def refused(path: Path | str) -> LocalError:
    """The error for a symbolic link where hauler writes a file of its own."""
    return LocalError(f"refusing to write through the symbolic link {path}")


def open_directory(path: Path) -> int:
    """A descriptor of the absolute directory ``path``, created as needed, reached from ``/``
    without following a symbolic link; ``LocalError`` when a component is one, ``OSError``
    (its ``filename`` the component) for any other failure."""
    if not path.is_absolute():
        path = Path.cwd() / path  # a relative path would lose its first component below
    fd = os.open("/", _DIR_FLAGS)
    reached = Path("/")
    for name in path.parts[1:]:
        reached = reached / name
        fd = _step(fd, name, reached)  # closes the parent's descriptor, also on failure
    return fd


def _step(parent_fd: int, name: str, path: Path) -> int:
    """The descriptor of directory ``name`` in ``parent_fd`` (made when missing); closes the
    parent's."""
    try:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent_fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        # With O_PATH, O_NOFOLLOW opens a link itself and O_DIRECTORY then says ENOTDIR.
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_link(parent_fd, name)):
            raise refused(path) from exc
        exc.filename = str(path)
        raise
    finally:
        os.close(parent_fd)
    return fd


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def is_link_error(exc: OSError) -> bool:
    """True when ``exc`` is ``O_NOFOLLOW`` meeting a symbolic link."""
    return exc.errno == errno.ELOOP


def open_regular(dir_fd: int, name: str) -> tuple[int, bool]:
    """Open ``name`` read-write, creating it when missing; ``(fd, is_new)``.

    Raises ``OSError`` (``ELOOP`` for a symbolic link, ``EISDIR``/``EINVAL`` for something that
    is not a regular file).
    """
    for _ in range(_OPEN_TRIES):
        try:
            return os.open(name, _RDWR | _CREATE, 0o644, dir_fd=dir_fd), True
        except FileExistsError:
            pass  # O_EXCL never follows a link: a dangling one lands here too
        try:
            fd = os.open(name, _RDWR | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
        _require_regular(fd)
        return fd, False
    raise OSError(errno.EAGAIN, "the file keeps appearing and vanishing", name)


def _require_regular(fd: int) -> None:
    """Close ``fd`` and raise unless it is a regular file (a FIFO or device is never ours)."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.set_blocking(fd, True)
        return
    os.close(fd)
    raise OSError(errno.EINVAL, "not a regular file")


def read_text(dir_fd: int | None, name: str, max_bytes: int) -> str | None:
    """The text of regular file ``name`` (its first ``max_bytes``), relative to ``dir_fd`` (None:
    ``name`` is a path); None when it is missing. ``OSError`` (``ELOOP``) for a symbolic link."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd
        )
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(max_bytes)
    finally:
        os.close(fd)
    return data.decode("utf-8")


def replace_text(dir_fd: int, name: str, tmp_name: str, text: str) -> None:
    """Atomically make ``name`` hold ``text``: write ``tmp_name`` (created ``O_EXCL``), rename.

    Whatever is under ``tmp_name`` (a temp file a killed writer left, or a planted link) is
    unlinked first: unlinking a link removes the link, never its target. The rename replaces
    the entry ``name``, link or not, without following it.
    """
    fd = _create_exclusive(dir_fd, tmp_name)
    try:
        data = text.encode("utf-8")
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)
    os.replace(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _create_exclusive(dir_fd: int, name: str) -> int:
    flags = os.O_WRONLY | _CREATE | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, 0o644, dir_fd=dir_fd)
    except FileExistsError:
        if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
            _log.warning("removed a symbolic link planted under the temporary name %s", name)
        unlink(dir_fd, name)
    return os.open(name, flags, 0o644, dir_fd=dir_fd)


def rename_no_replace(dir_fd: int, src: str, dst: str, dst_dir_fd: int | None = None) -> None:
    """Rename ``src`` to ``dst`` in the directory (or into ``dst_dir_fd``'s, on the same file
    system), never replacing an entry under ``dst``: ``FileExistsError`` when there is one.

    A hard link then an unlink: ``link`` fails when ``dst`` exists, atomically, so a file that
    appeared under the name meanwhile (another program's) is never replaced. Where the file
    system has no hard links, a check then a rename (the window is then the check's).
    """
    target_fd = dir_fd if dst_dir_fd is None else dst_dir_fd
    try:
        os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=target_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise
        try:
            os.lstat(dst, dir_fd=target_fd)
        except FileNotFoundError:
            os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=target_fd)
            return
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from exc
    os.unlink(src, dir_fd=dir_fd)


def private_directory(path: Path) -> Path:
    """``path`` as a directory only this user can enter (mode 0700), made when missing, reached
    without following a link; ``LocalError`` when what is there is not ours.

    For programs that open files by path (yt-dlp, ffmpeg): inside a directory no one else
    can write into, no one can plant a link under the names they will create.
    """
    parent_fd = open_directory(path.parent)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path.name, 0o700, dir_fd=parent_fd)
        st = os.lstat(path.name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)
    if stat.S_ISLNK(st.st_mode):
        raise refused(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise LocalError(f"{path} is not a private directory of this user: remove it")
    return path


def fsync_directory(dir_fd: int) -> None:
    """Flush the directory's entries (a rename) to disk."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink(dir_fd: int, name: str) -> None:
    """Remove the entry ``name`` (a link itself, not its target); nothing when it is missing."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
