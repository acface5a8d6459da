"""Integrity checks before the final rename: size and optional checksum (hashlib)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from hauler.errors import ContentMismatch
from hauler.models import Checksum
from hauler.transfer.partfile import PartFile, local_error

READ_BYTES = 1024 * 1024
# Files up to this size are hashed on the event loop; larger ones in a thread.
INLINE_HASH_BYTES = 4 * 1024 * 1024


def _digest_fd(fd: int, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    offset = 0
    while block := os.pread(fd, READ_BYTES, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def _digest_path(path: Path, algorithm: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _digest_fd(fd, algorithm)
    finally:
        os.close(fd)


async def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of the file at ``path``; ``LocalError`` if it cannot be read."""
    try:
        if path.stat().st_size <= INLINE_HASH_BYTES:
            return _digest_path(path, algorithm)
        return await asyncio.to_thread(_digest_path, path, algorithm)
    except OSError as exc:
        raise local_error(exc, path) from exc


async def fd_digest(fd: int, algorithm: str, size: int) -> str:
    """The hex digest of the open file ``fd`` of ``size`` bytes: on the loop when small, else in
    a thread (the loop keeps serving the other transfers); ``OSError`` when it cannot be read."""
    if size > INLINE_HASH_BYTES:
        return await asyncio.to_thread(_digest_fd, fd, algorithm)
    return _digest_fd(fd, algorithm)


def mismatch_existing(path: Path, checksum: Checksum, actual: str) -> ContentMismatch:
    """The error for an existing final file whose checksum is wrong."""
    return ContentMismatch(
        f"{path} exists but its {checksum.algorithm} is {actual}, expected "
        f"{checksum.hexdigest}; use --force to download it again"
    )


async def check_part(part: PartFile, size: int, checksum: Checksum | None) -> str | None:
    """Check the finished ``.part``: its size, and ``checksum`` when given.

    On a mismatch the ``.part`` and control files are deleted (their bytes are wrong) and
    ``ContentMismatch`` is raised. Returns the hex digest when one was computed.
    """
    try:
        actual_size = os.fstat(part.fd).st_size
    except OSError as exc:
        raise local_error(exc, part.path) from exc
    if actual_size != size:
        part.discard()
        raise ContentMismatch(
            f"{part.final_path.name}: {actual_size} bytes on disk, expected {size}"
        )
    if checksum is None:
        return None
    try:
        digest = await fd_digest(part.fd, checksum.algorithm, size)
    except OSError as exc:
        raise local_error(exc, part.path) from exc
    if digest != checksum.hexdigest:
        part.discard()
        raise ContentMismatch(
            f"{part.final_path.name}: {checksum.algorithm} is {digest}, "
            f"expected {checksum.hexdigest}"
        )
    return digest
