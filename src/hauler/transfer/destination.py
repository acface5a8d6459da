"""Where a download goes: its final name, settled by the request's ``on_existing`` policy, and
that name's partial, opened and locked (``take_name``); or the file already there to skip.

A name is taken when a file not marked as this download's is there, or a partial of another
URL (its mark or control file says so, or a download of this process holds it): the next
numbered name is tried (``existing``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hauler import nofollow
from hauler.clock import Clock
from hauler.errors import LocalError
from hauler.models import OnExisting
from hauler.naming import MAX_COUNTER, numbered
from hauler.transfer import existing, integrity, marks
from hauler.transfer.attempt import AttemptContext
from hauler.transfer.controlfiles import CONTROL_SUFFIX
from hauler.transfer.partfile import PartBusy, PartFile
from hauler.transfer.request import TransferRequest, TransferResult


@dataclass(frozen=True, slots=True)
class Destination:
    """A settled final name: its partial open and locked, or None when the file there is to
    be skipped; ``continue_from``: the existing bytes taken as this download's (wget ``-c``)."""

    path: Path
    part: PartFile | None
    continue_from: int = 0


def take_name(attempt: AttemptContext, request: TransferRequest, path: Path) -> Destination:
    """``path`` or the first free numbered name after it, by ``request.on_existing``."""
    source = marks.url_key(request.url)
    for candidate in existing.candidates(path):
        verdict = existing.judge(candidate, source, request.on_existing)
        if verdict is existing.Verdict.SKIP:
            _drop_stale_control(candidate)
            return Destination(candidate, None)
        if verdict is existing.Verdict.NEXT:
            continue
        is_continue = verdict is existing.Verdict.CONTINUE
        part = _open_part(attempt, request, candidate, source, is_continue)
        if part is not None:
            continue_from = part.size_on_disk() if part.is_adopted else 0
            return Destination(candidate, part, continue_from)
    raise LocalError(f"no free name for {path} (up to {numbered(path.name, MAX_COUNTER)})")


def _drop_stale_control(final_path: Path) -> None:
    """Remove the control file of a complete file when no partial is left beside it: a
    process killed between the commit's rename and the control file's removal left it (the
    kill -9 chaos test found such ``x.bin.part.json`` files next to done jobs)."""
    directory, name = final_path.parent, final_path.name
    if os.path.lexists(directory / f"{name}.part"):
        return  # a partial of the name is there: its control file is not stale
    control = directory / f"{name}{CONTROL_SUFFIX}"
    if not os.path.lexists(control):
        return
    try:
        dir_fd = nofollow.open_directory(directory)
    except OSError:
        return
    try:
        nofollow.unlink(dir_fd, control.name)
    finally:
        os.close(dir_fd)


def _open_part(
    attempt: AttemptContext,
    request: TransferRequest,
    final_path: Path,
    source: str,
    is_continue: bool,
) -> PartFile | None:
    """Open and lock ``final_path``'s partial for ``source``; None when it is another URL's
    (then it is left as it is)."""
    part = PartFile(final_path, source)
    in_use = attempt.parts_in_use
    try:
        part.open(adopt=is_continue)
    except PartBusy:
        holder = in_use.get(part.path) or marks.source_of(part.path)
        if holder is not None and holder != source:
            return None  # another URL's download holds it: this name is taken
        raise
    if request.on_existing is not OnExisting.OVERWRITE and not part.is_ours(
        part.load_control(), request.url
    ):
        part.close()
        return None
    in_use[part.path] = source
    return part


async def skipped(
    request: TransferRequest, path: Path, clock: Clock, started_at: float
) -> TransferResult:
    """The result for ``path``, already there and not to be fetched (checked against the
    request's checksum when it has one)."""
    checksum = request.checksum
    digest = None
    if checksum is not None:
        digest = await integrity.file_digest(path, checksum.algorithm)
        if digest != checksum.hexdigest:
            raise integrity.mismatch_existing(path, checksum, digest)
    # lstat: a link left there by ``skip`` is reported as what it is, dangling or not.
    size = os.lstat(path).st_size
    return TransferResult(
        url=request.url,
        final_url=request.url,
        path=path,
        size=size,
        bytes_fetched=0,
        resumed_bytes=0,
        elapsed_s=clock.monotonic() - started_at,
        skipped=True,
        checksum=digest,
    )
