"""The verify stage: a staged artifact must meet its ``Expectation`` (size, checksum, and for
media the streams and duration ffprobe reads) before it may take its final name.

A file that fails is removed: its bytes are wrong, and a retry starts it again. The engine
verifies its own files before its atomic rename (its artifacts come back final); every kind
that stages its files (media merges, live parts) is checked here, the same way.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace

from hauler import nofollow
from hauler.errors import BadMedia, ContentMismatch, LocalError
from hauler.pipeline import ffprobe
from hauler.pipeline.outcome import Artifact, Expectation
from hauler.transfer.integrity import fd_digest

# How far a file's duration may be from the expected one: 2 %, or 1 s for short files.
DURATION_TOLERANCE = 0.02
DURATION_SLACK_S = 1.0


async def verify(artifact: Artifact) -> Artifact:
    """``artifact`` checked (with its digest when a checksum was expected); final artifacts
    pass through. ``ContentMismatch`` (size, checksum) or ``BadMedia`` (what ffprobe reads) when
    it fails, the staged file removed."""
    if artifact.staged is None:
        return artifact
    try:
        digest = await _check_file(artifact, artifact.expect)
        if artifact.expect.needs_probe:
            _check_media(artifact, await ffprobe.probe(artifact.staged), artifact.expect)
    except (ContentMismatch, BadMedia):
        _remove(artifact)
        raise
    return replace(artifact, checksum=digest or artifact.checksum)


async def _check_file(artifact: Artifact, expect: Expectation) -> str | None:
    """Size and checksum, read through a descriptor that follows no link."""
    staged = artifact.staged
    assert staged is not None
    try:
        dir_fd = nofollow.open_directory(staged.parent)
        try:
            fd = os.open(staged.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise LocalError(f"cannot read {staged}: {exc.strerror or exc}") from exc
    try:
        size = os.fstat(fd).st_size
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ContentMismatch(f"{artifact.path.name}: not a regular file")
        if expect.size is not None and size != expect.size:
            raise ContentMismatch(
                f"{artifact.path.name}: {size} bytes on disk, expected {expect.size}"
            )
        if expect.checksum is None:
            return None
        digest = await fd_digest(fd, expect.checksum.algorithm, size)
    finally:
        os.close(fd)
    if digest != expect.checksum.hexdigest:
        raise ContentMismatch(
            f"{artifact.path.name}: {expect.checksum.algorithm} is {digest}, "
            f"expected {expect.checksum.hexdigest}"
        )
    return digest


def _check_media(artifact: Artifact, found: ffprobe.MediaInfo, expect: Expectation) -> None:
    """Audio or video is there, the promised stream types too, and the duration is close."""
    name = artifact.path.name
    if not found.streams & {"video", "audio"}:
        raise BadMedia(f"{name}: ffprobe finds neither video nor audio in it")
    missing = sorted(expect.streams - found.streams)
    if missing:
        have = ", ".join(sorted(found.streams)) or "none"
        raise BadMedia(f"{name}: no {' or '.join(missing)} stream (streams: {have})")
    if expect.duration_s is None:
        return
    if found.duration_s is None:
        raise BadMedia(f"{name}: ffprobe finds no duration")
    allowed = max(DURATION_SLACK_S, expect.duration_s * DURATION_TOLERANCE)
    if abs(found.duration_s - expect.duration_s) > allowed:
        raise BadMedia(
            f"{artifact.path.name}: {found.duration_s:.1f} s long, expected "
            f"{expect.duration_s:.1f} s"
        )


def _remove(artifact: Artifact) -> None:
    staged = artifact.staged
    assert staged is not None
    try:
        dir_fd = nofollow.open_directory(staged.parent)
    except OSError:
        return
    try:
        nofollow.unlink(dir_fd, staged.name)
    finally:
        os.close(dir_fd)
