"""How hauler knows a file in the output directory is the one it downloaded from a URL.

A name alone proves nothing: two URLs can map to the same name, and the user's own file can sit
under it. So hauler marks what it writes with an extended attribute, ``user.hauler.source``:
the sha256 of the normalised URL while the file is a partial, plus its size once committed. A
final file is this download's, complete, only when its mark names this URL and its size is
still the marked one. Where the file system keeps no user attributes the mark is missing, and
the file is not known as ours: it gets a new name, it is never overwritten.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from hauler.models import normalise_url

ATTRIBUTE = "user.hauler.source"
# No such attribute, or the file system (or the file type: a link) keeps none.
_NO_MARK = frozenset({errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.E2BIG})


@dataclass(frozen=True, slots=True)
class Mark:
    """What a mark says: whose file it is and, once committed, its size."""

    source: str
    size: int | None


def url_key(url: str) -> str:
    """The hex sha256 of ``normalise_url(url)``: the same for every spelling of one URL."""
    return hashlib.sha256(normalise_url(url).encode("utf-8", "surrogateescape")).hexdigest()


def mark_partial(fd: int, source: str) -> None:
    """Mark the open partial ``fd`` as ``source``'s (nothing where marks are not kept)."""
    _set(fd, source)


def mark_complete(fd: int, source: str, size: int) -> None:
    """Mark the open, verified file ``fd`` as ``source``'s complete ``size`` bytes."""
    _set(fd, f"{source} {size}")


def _set(fd: int, value: str) -> None:
    try:
        os.setxattr(fd, ATTRIBUTE, value.encode("ascii"))
    except OSError as exc:
        if exc.errno not in _NO_MARK:
            raise


def read_fd(fd: int) -> Mark | None:
    """The mark of the open file ``fd``; None when it has none."""
    try:
        return _parse(os.getxattr(fd, ATTRIBUTE))
    except OSError as exc:
        if exc.errno in _NO_MARK:
            return None
        raise


def source_of(path: Path) -> str | None:
    """Whose file ``path`` is by its mark (a link is nobody's); None when unmarked."""
    try:
        mark = _parse(os.getxattr(path, ATTRIBUTE, follow_symlinks=False))
    except OSError:
        return None
    return mark.source if mark is not None else None


def is_complete(path: Path, source: str) -> bool:
    """True when ``path`` is a regular file marked complete for ``source`` at its current size.

    Never follows a symbolic link: a link is not hauler's file.
    """
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        mark = _parse(os.getxattr(path, ATTRIBUTE, follow_symlinks=False))
    except OSError:
        return False
    return mark is not None and mark.source == source and mark.size == st.st_size


def _parse(raw: bytes) -> Mark | None:
    source, _, size = raw.decode("ascii", "replace").partition(" ")
    if len(source) != 64:
        return None
    if not size:
        return Mark(source, None)
    return Mark(source, int(size)) if size.isdigit() else None
