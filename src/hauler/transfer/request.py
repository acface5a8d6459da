"""What the engine is asked to do, what it reports back, and how it reports progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from hauler.models import Checksum, OnExisting


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


class ProgressSink(Protocol):
    """Receives a transfer's progress. Called from the event loop; must not block."""

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        """The file's name and size are known; ``done_bytes`` were already on disk."""
        ...

    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more bytes were written."""
        ...


@runtime_checkable
class TransferEvents(Protocol):
    """What a ``ProgressSink`` may also hear when it has these methods (the CLI's displays do).

    Kept apart from ``ProgressSink`` so that sinks without them stay valid: the engine asks
    ``events_of(sink)`` once per download.
    """

    def connections(self, count: int) -> None:
        """The file now runs on ``count`` connections."""
        ...

    def retrying(self, message: str, attempt: int, attempts: int, delay_s: float) -> None:
        """Attempt ``attempt`` of ``attempts`` follows in ``delay_s`` after ``message``."""
        ...


class NullProgress:
    """A ``ProgressSink`` (and ``TransferEvents``) that ignores everything."""

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        return None

    def advanced(self, nbytes: int) -> None:
        return None

    def connections(self, count: int) -> None:
        return None

    def retrying(self, message: str, attempt: int, attempts: int, delay_s: float) -> None:
        return None


def events_of(sink: ProgressSink) -> TransferEvents:
    """``sink`` when it listens to ``TransferEvents``, else a listener that ignores them."""
    return sink if isinstance(sink, TransferEvents) else NullProgress()
