"""The end of a download: verify the ``.part`` file (size, checksum) and rename it into place.

``verify_and_commit`` is the last step of every ``Download`` attempt that got all the bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from hauler.models import Checksum
from hauler.transfer import integrity
from hauler.transfer.partfile import PartFile


async def verify_and_commit(
    part: PartFile, size: int, checksum: Checksum | None, *, durable: bool, may_replace: bool
) -> tuple[Path, str | None]:
    """Truncate ``part`` to ``size``, check it against ``checksum``, then rename it into place
    (``durable``: with its fsyncs); the final path and the digest (None without a checksum)."""
    part.truncate(size)
    digest = await integrity.check_part(part, size, checksum)
    if durable:
        # Two fsyncs take milliseconds: in a thread, while the loop serves other transfers.
        return await _to_the_end(part.commit, True, may_replace), digest
    return part.commit(False, may_replace), digest


async def _to_the_end(func: Callable[[bool, bool], Path], durable: bool, may_replace: bool) -> Path:
    """``func(durable, may_replace)`` in a thread; when cancelled, still wait for it before
    raising (the file it works on must not be closed under it)."""
    work = asyncio.ensure_future(asyncio.to_thread(func, durable, may_replace))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait({work})
        raise
