"""What the engine is asked to do and what it reports back (progress: ``hauler.progress``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hauler.models import Checksum, OnExisting
from hauler.progress import NullProgress, ProgressSink, TransferEvents, events_of

__all__ = [
    "NullProgress",
    "ProgressSink",
    "TransferEvents",
    "TransferRequest",
    "TransferResult",
    "events_of",
]


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """One file to download into ``output_dir``.

    ``filename`` is a name or relative path chosen by the user; when None the engine names the
    file from Content-Disposition, else from the URL path. Either way the name is sanitised and
    never leaves ``output_dir``. ``on_existing`` says what a taken final name means (a file
    hauler marked as this URL's is always skipped, except by ``overwrite``).
    """

    url: str
    output_dir: Path
    filename: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    checksum: Checksum | None = None
    connections: int | None = None
    limit_rate_bps: int | None = None
    proxy: str | None = None
    on_existing: OnExisting = OnExisting.RENAME
    # An ``auto`` job where a media handler exists: a web page or a manifest is not saved but
    # refused with ``NotAFile`` (before any byte is written), for the pipeline to run as media.
    pages_are_media: bool = False


@dataclass(frozen=True, slots=True)
class TransferResult:
    """A verified file under its final name."""

    url: str
    final_url: str
    path: Path
    size: int
    bytes_fetched: int
    resumed_bytes: int
    elapsed_s: float
    skipped: bool = False
    checksum: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    # Resumed from a partial that only its size pinned (no ETag, no Last-Modified): the bytes
    # on disk could not be checked against the origin's current version (aria2c's rule).
    is_unverified_resume: bool = False
