"""Which handler runs a job: its kind when the spec names one, else (``auto``) the first
registered kind whose recogniser claims the URL, else a plain file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hauler.errors import BadRequest
from hauler.models import JobKind, JobSpec
from hauler.pipeline.handler import Handler

# Why a kind may have no handler here, and what to do about it.
_INSTALL_HINTS = {JobKind.MEDIA: "yt-dlp is not installed (pip install 'hauler[media]')"}
# True when a kind's handler should take this URL under ``auto`` (no network: a pattern match).
Recognizer = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class _Entry:
    handler: Handler
    recognizes: Recognizer | None


class Resolver:
    """The handlers by kind. ``file`` is the fallback of ``auto``; other kinds (media, live)
    register with a recogniser, asked in the order they registered."""

    def __init__(self) -> None:
        self._entries: dict[JobKind, _Entry] = {}

    def register(
        self, kind: JobKind, handler: Handler, recognizes: Recognizer | None = None
    ) -> None:
        """Let ``handler`` run ``kind`` jobs (and, with ``recognizes``, the ``auto`` ones it
        claims)."""
        if kind is JobKind.AUTO:
            raise ValueError("auto is resolved to a kind, it has no handler of its own")
        self._entries[kind] = _Entry(handler, recognizes)

    @property
    def kinds(self) -> frozenset[JobKind]:
        """The kinds this resolver can run."""
        return frozenset(self._entries)

    def kind_of(self, spec: JobSpec) -> JobKind:
        """The kind ``spec`` runs as."""
        if spec.kind is not JobKind.AUTO:
            return spec.kind
        for kind, entry in self._entries.items():
            if entry.recognizes is not None and entry.recognizes(spec.url):
                return kind
        return JobKind.FILE

    def handler_for(self, kind: JobKind) -> Handler:
        """The handler of ``kind``; ``BadRequest`` when this process has none."""
        entry = self._entries.get(kind)
        if entry is None:
            hint = _INSTALL_HINTS.get(kind, "no handler for them")
            raise BadRequest(f"this hauler cannot run {kind.value} jobs: {hint}")
        return entry.handler
