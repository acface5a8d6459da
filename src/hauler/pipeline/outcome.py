"""What a handler hands back: the files a job produced (``Artifact``) and the ``Outcome`` of the
job, the same shape for every kind, with the record the store keeps and ``--json`` prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hauler.models import Checksum, JobKind


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the verify stage checks of a staged file before it gets its final name.

    ``streams`` and ``duration_s`` are read with ffprobe (media and live recordings): each
    named stream type (``video``, ``audio``) must be there, and the duration within 2 % (or
    1 s) of ``duration_s``.
    """

    size: int | None = None
    checksum: Checksum | None = None
    streams: frozenset[str] = frozenset()
    duration_s: float | None = None

    @property
    def needs_probe(self) -> bool:
        """True when ffprobe must read the file."""
        return bool(self.streams) or self.duration_s is not None


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file of a job's result.

    A handler returns it either final (``staged`` is None: already verified and under ``path``,
    as the engine's files are) or staged: complete under the temporary name ``staged``, beside
    ``path``, with the ``expect``-ations the verify stage checks before the finalize stage
    renames it to ``path`` (or the next free numbered name). ``role`` says what it is to the
    job: ``file``, ``media``, ``part`` (of a recording), ``subtitle``, ``thumbnail``, ``info``.
    """

    path: Path
    size: int
    role: str = "file"
    checksum: str | None = None  # the hex digest, when one was computed
    staged: Path | None = None
    expect: Expectation = field(default_factory=Expectation)

    @property
    def is_final(self) -> bool:
        """True once the file is under its final name."""
        return self.staged is None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one job ended well: its artifacts (the first is the main one), the bytes this run
    fetched, and ``details``: what only its kind knows (a file's validators, a video's
    extractor and id), JSON-able, stored with the job."""

    kind: JobKind
    url: str
    final_url: str
    artifacts: tuple[Artifact, ...]
    bytes_fetched: int
    elapsed_s: float
    resumed_bytes: int = 0
    skipped: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> Artifact:
        """The main file (the download, the merged video, the first part)."""
        return self.artifacts[0]

    @property
    def size(self) -> int:
        """The bytes of every artifact together."""
        return sum(artifact.size for artifact in self.artifacts)


def result_record(outcome: Outcome) -> dict[str, Any]:
    """The JSON-able record stored with a done job and printed by ``--json``."""
    main = outcome.primary
    record: dict[str, Any] = {
        "path": str(main.path),
        "size": main.size,
        "final_url": outcome.final_url,
        "bytes_fetched": outcome.bytes_fetched,
        "resumed_bytes": outcome.resumed_bytes,
        "elapsed_s": round(outcome.elapsed_s, 3),
        "skipped": outcome.skipped,
        "checksum": main.checksum,
        **outcome.details,
    }
    if outcome.kind is not JobKind.FILE:
        record["kind"] = outcome.kind.value
    if len(outcome.artifacts) > 1:
        record["artifacts"] = [
            {"path": str(a.path), "size": a.size, "role": a.role} for a in outcome.artifacts
        ]
    return record
