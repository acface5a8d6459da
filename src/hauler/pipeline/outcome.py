"""What a handler hands back: the files a job produced (``Artifact``) and the ``Outcome`` of the
job, the same shape for every kind, with the record the store keeps and ``--json`` prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hauler.models import Checksum, JobKind, JobSpec


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the verify stage checks of a staged file before it gets its final name.

    ``is_media`` (media and live recordings): ffprobe must read the file and find audio or
    video in it, each stream type named in ``streams`` (``video``, ``audio``), and a duration
    within 2 % (or 1 s) of ``duration_s`` when that is known.
    """

    size: int | None = None
    checksum: Checksum | None = None
    is_media: bool = False
    streams: frozenset[str] = frozenset()
    duration_s: float | None = None

    @property
    def needs_probe(self) -> bool:
        """True when ffprobe must read the file."""
        return self.is_media or bool(self.streams) or self.duration_s is not None


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
    # What the file is a whole download of, for its mark (``marks``): the job's URL when None;
    # a video adds its format request (the same page in another format is another file).
    source: str | None = None

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
    # Text files written beside the main file once it has its final name, by suffix: an
    # ``.info.json`` for ``x.mp4`` is ``x.info.json`` (``x.1.info.json`` if it became ``x.1.mp4``).
    sidecars: Mapping[str, str] = field(default_factory=dict)
    # A directory of the handler's own (fragments, formats before their merge), removed with
    # what is left in it once the artifacts have their final names; kept on failure, to resume.
    scratch: Path | None = None
    # Jobs this one turned into (a playlist's entries): queued by the worker, run by ``get``.
    spawned: tuple[JobSpec, ...] = ()

    @property
    def primary(self) -> Artifact | None:
        """The main file (the download, the merged video, the first part); None for a job
        that only spawned others."""
        return self.artifacts[0] if self.artifacts else None

    @property
    def size(self) -> int:
        """The bytes of every artifact together."""
        return sum(artifact.size for artifact in self.artifacts)


def result_record(outcome: Outcome) -> dict[str, Any]:
    """The JSON-able record stored with a done job and printed by ``--json``."""
    main = outcome.primary
    record: dict[str, Any] = {
        "path": str(main.path) if main else None,
        "size": main.size if main else 0,
        "final_url": outcome.final_url,
        "bytes_fetched": outcome.bytes_fetched,
        "resumed_bytes": outcome.resumed_bytes,
        "elapsed_s": round(outcome.elapsed_s, 3),
        "skipped": outcome.skipped,
        "checksum": main.checksum if main else None,
        **outcome.details,
    }
    if outcome.spawned:
        record["entries"] = [spec.url for spec in outcome.spawned]
    if outcome.kind is not JobKind.FILE:
        record["kind"] = outcome.kind.value
    if len(outcome.artifacts) > 1:
        record["artifacts"] = [
            {"path": str(a.path), "size": a.size, "role": a.role} for a in outcome.artifacts
        ]
    return record
