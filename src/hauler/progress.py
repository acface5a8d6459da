"""How a running job tells of its progress: bytes (``ProgressSink``) and, for the displays that
listen, connections and retries (``TransferEvents``).

Every kind reports through these (the engine for files, the media and live handlers later), so
the CLI's bars, the worker's meter and the observers take one shape of progress.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable


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


@runtime_checkable
class LiveEvents(Protocol):
    """What a ``ProgressSink`` may also hear of a recording (the ``record`` display does)."""

    def live_state(self, state: str, part_index: int | None, recorded_s: float) -> None:
        """The recording is now ``state`` (waiting, recording, reconnecting, ended), writing
        part ``part_index``, with ``recorded_s`` of media so far."""
        ...


_TRANSFER_EVENTS = ("connections", "retrying")
_LIVE_EVENTS = ("live_state",)


class NullProgress:
    """A ``ProgressSink`` (and ``TransferEvents``, ``LiveEvents``) that ignores everything."""

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        return None

    def advanced(self, nbytes: int) -> None:
        return None

    def connections(self, count: int) -> None:
        return None

    def retrying(self, message: str, attempt: int, attempts: int, delay_s: float) -> None:
        return None

    def live_state(self, state: str, part_index: int | None, recorded_s: float) -> None:
        return None


def _listens(sink: object, methods: tuple[str, ...]) -> bool:
    """``sink`` has every one of ``methods``: what ``isinstance`` on a runtime-checkable
    protocol tells, without its cost (Python 3.11 works the protocol's members out again at
    every call: ~5 % of a small file's CPU when asked once per download)."""
    return all(callable(getattr(sink, name, None)) for name in methods)


def live_events_of(sink: ProgressSink) -> LiveEvents:
    """``sink`` when it listens to ``LiveEvents``, else a listener that ignores them."""
    return cast(LiveEvents, sink) if _listens(sink, _LIVE_EVENTS) else NullProgress()


def events_of(sink: ProgressSink) -> TransferEvents:
    """``sink`` when it listens to ``TransferEvents``, else a listener that ignores them."""
    return cast(TransferEvents, sink) if _listens(sink, _TRANSFER_EVENTS) else NullProgress()
