"""The finalize stage: a verified staged artifact takes its final name, atomically, and (in a
worker) durably; sidecars (``.info.json``) are written the same way.

The rename never replaces a file that is not this job's, unless the run said ``overwrite``: a
taken name gives the next free numbered one (``x.1.mp4``), as the engine does for files. The
file is marked as the job URL's (``marks``), so that a later run of the same URL skips it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from pathlib import Path

from hauler import nofollow
from hauler.errors import LocalError
from hauler.models import OnExisting
from hauler.naming import MAX_COUNTER, numbered
from hauler.pipeline.outcome import Artifact
from hauler.redact import printable
from hauler.transfer import marks

_log = logging.getLogger(__name__)


async def finalize(
    artifact: Artifact, source_url: str, on_existing: OnExisting, *, durable: bool
) -> Artifact:
    """``artifact`` under its final name (or the next free one); final ones pass through.
    ``LocalError`` when the rename fails (the staged file is kept for a retry)."""
    if artifact.staged is None:
        return artifact
    staged, source = artifact.staged, marks.url_key(source_url)
    # fsyncs take milliseconds and a rename may wait on the disk: off the loop, and a cancel
    # waits for it to end (the file must not be half-moved when the task is gone).
    work = asyncio.ensure_future(
        asyncio.to_thread(_land, staged, artifact.path, source, on_existing, durable)
    )
    try:
        final = await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait({work})
        raise
    return replace(artifact, path=final, staged=None)


def _land(staged: Path, path: Path, source: str, on_existing: OnExisting, durable: bool) -> Path:
    """Move ``staged`` (beside ``path``, or in a work directory of the same file system) to
    ``path`` or the next free name."""
    try:
        dir_fd = nofollow.open_directory(path.parent)
        try:
            from_fd = (
                dir_fd if staged.parent == path.parent else nofollow.open_directory(staged.parent)
            )
            try:
                name = _move(
                    from_fd,
                    staged.name,
                    dir_fd,
                    path.name,
                    source=source,
                    on_existing=on_existing,
                    durable=durable,
                )
            finally:
                if from_fd != dir_fd:
                    os.close(from_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise LocalError(f"cannot move {staged.name} to {path}: {exc.strerror or exc}") from exc
    return path.with_name(name)


def _move(
    from_fd: int,
    staged: str,
    dir_fd: int,
    name: str,
    *,
    source: str,
    on_existing: OnExisting,
    durable: bool,
) -> str:
    _mark_and_flush(from_fd, staged, source, durable)
    if on_existing is OnExisting.OVERWRITE:
        os.replace(staged, name, src_dir_fd=from_fd, dst_dir_fd=dir_fd)
    else:
        name = _rename_to_free_name(from_fd, staged, dir_fd, name)
    if durable:
        nofollow.fsync_directory(dir_fd)
    return name


def _mark_and_flush(dir_fd: int, name: str, source: str, durable: bool) -> None:
    fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        marks.mark_complete(fd, source, os.fstat(fd).st_size)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _rename_to_free_name(from_fd: int, staged: str, dir_fd: int, name: str) -> str:
    for counter in range(MAX_COUNTER + 1):
        candidate = numbered(name, counter) if counter else name
        try:
            nofollow.rename_no_replace(from_fd, staged, candidate, dir_fd)
        except FileExistsError:
            continue
        if counter:
            _log.warning("%s is taken: this file is %s", printable(name), printable(candidate))
        return candidate
    raise LocalError(f"no free name for {name} (tried {MAX_COUNTER} numbered ones)")


def write_sidecar(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temp file renamed over it) without following a
    link; the path. A sidecar belongs to its artifact: it replaces an older one."""
    try:
        dir_fd = nofollow.open_directory(path.parent)
        try:
            nofollow.replace_text(dir_fd, path.name, f".{path.name}.tmp", text)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise LocalError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
