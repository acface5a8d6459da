"""The ledger of one live job across its sessions, attempts and workers: the parts landed, the
gaps, the part open now, and where the stream was when it was last written.

It is saved on the running job (``Continuation.save``) at every part opened and closed, so a
worker that takes over after a kill -9 starts from it: it numbers its parts on from the last,
finds the part that was open (a playable MPEG-TS or FLV file under its temporary name) to
probe and list, and resumes the playlist after the last segment written when the stream still
offers the next one. The saved record is the shape of the job's final result (``{"live": …}``),
so ``hauler jobs --json`` shows a recording's parts while it records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hauler.live.parts import ClosedPart, OpenPart


@dataclass(frozen=True, slots=True)
class Orphan:
    """A part an earlier attempt had open when it ended without closing it."""

    staged: Path
    path: Path
    index: int
    started_at: float
    # The last segment written into it (HLS): a successor that adopts it resumes after this.
    last_sequence: int | None = None


@dataclass(slots=True)
class LiveLedger:
    """Everything a live job has recorded so far (records as its result lists them)."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, float]] = field(default_factory=list)
    sessions: int = 0
    next_index: int = 1
    recorded_s: float = 0.0
    last_sequence: int | None = None
    state: str = "starting"
    open_part: Orphan | None = None
    # Gaps and media of the recordings of earlier sessions (a session adds its own on top).
    _offset_s: float = 0.0

    @classmethod
    def from_previous(cls, previous: Mapping[str, Any] | None) -> LiveLedger:
        """The ledger an earlier attempt saved (``Job.result``), or a new one; fields that are
        missing or malformed start afresh rather than fail a recording."""
        live = previous.get("live") if isinstance(previous, Mapping) else None
        if not isinstance(live, Mapping):
            return cls()
        ledger = cls(
            parts=[dict(p) for p in live.get("parts", []) if isinstance(p, Mapping)],
            gaps=[dict(g) for g in live.get("gaps", []) if isinstance(g, Mapping)],
            sessions=_int(live.get("sessions"), 0),
            next_index=max(1, _int(live.get("next_index"), 1)),
            recorded_s=_float(live.get("recorded_s")),
            last_sequence=_optional_int(live.get("last_sequence")),
        )
        ledger.open_part = _orphan(live.get("open_part"))
        ledger._offset_s = ledger.recorded_s
        return ledger

    @property
    def missing_s(self) -> float:
        """The media of every gap reported."""
        return sum(float(gap.get("missing_s", 0.0)) for gap in self.gaps)

    def opened(self, part: OpenPart, directory: Path) -> None:
        """``part`` is being written: where it is, in case this attempt dies with it open."""
        self.open_part = Orphan(
            directory / part.staged, directory / part.name, part.index, part.started_at
        )
        self.next_index = max(self.next_index, part.index + 1)

    def appended(self, part: OpenPart) -> None:
        """A segment went into the open part."""
        if self.open_part is not None and self.open_part.index == part.index:
            self.open_part = replace(self.open_part, last_sequence=part.last_sequence)

    def landed(self, part: ClosedPart, path: Path, size: int) -> dict[str, Any]:
        """``part`` is in place at ``path`` (``size`` bytes: remuxed, it is another file):
        listed, and no longer open."""
        record = {**part.record(path), "bytes": size}
        self.parts.append(record)
        self.recorded_s += part.duration_s
        self.next_index = max(self.next_index, part.index + 1)
        if part.last_sequence is not None:
            self.last_sequence = part.last_sequence
        self.open_part = None
        return record

    def adopted(self, orphan: Orphan, record: dict[str, Any], duration_s: float) -> None:
        """An earlier attempt's open part, probed and in place, listed in its order; the
        stream resumes after its last segment."""
        self.parts.append(record)
        self.parts.sort(key=lambda part: str(part.get("started_at", "")))
        self.recorded_s += duration_s
        self._offset_s = self.recorded_s
        if orphan.last_sequence is not None:
            self.last_sequence = orphan.last_sequence
        self.open_part = None

    def gap(self, after_s: float, missing_s: float) -> None:
        """A stretch of the stream that was not recorded (``after_s``: into the whole job)."""
        self.gaps.append({"after_s": round(after_s, 3), "missing_s": round(missing_s, 3)})

    def session_gaps(self, gaps: list[dict[str, float]]) -> None:
        """A finished session's own gaps (``after_s`` into the session), placed in the job."""
        for gap in gaps:
            self.gap(self._offset_s + float(gap["after_s"]), float(gap["missing_s"]))
        self._offset_s = self.recorded_s

    def record(self, end: str | None = None) -> dict[str, Any]:
        """The ``{"live": …}`` record: saved while running, and the job's result at the end."""
        live: dict[str, Any] = {
            "parts": list(self.parts),
            "gaps": list(self.gaps),
            "state": self.state,
            "sessions": self.sessions,
            "recorded_s": round(self.recorded_s, 3),
            "missing_s": round(self.missing_s, 3),
            "next_index": self.next_index,
            "last_sequence": self.last_sequence,
        }
        if end is not None:
            live["end"] = end
        if self.open_part is not None:
            live["open_part"] = {
                "staged": str(self.open_part.staged),
                "path": str(self.open_part.path),
                "index": self.open_part.index,
                "started_at": self.open_part.started_at,
                "last_sequence": self.open_part.last_sequence,
            }
        return {"live": live}


def _orphan(value: Any) -> Orphan | None:
    if not isinstance(value, Mapping):
        return None
    staged, path = value.get("staged"), value.get("path")
    if not isinstance(staged, str) or not isinstance(path, str):
        return None
    return Orphan(
        Path(staged),
        Path(path),
        _int(value.get("index"), 0),
        _float(value.get("started_at")),
        _optional_int(value.get("last_sequence")),
    )


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
