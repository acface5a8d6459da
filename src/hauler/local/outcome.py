"""How each file of a local batch ends (``FileOutcome``, ``ErrorInfo``) and the ``Reporter`` a
batch tells as it goes: the CLI's reporters print them; an API could collect them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hauler.errors import HaulerError
from hauler.models import JobSpec
from hauler.pipeline.outcome import Outcome
from hauler.progress import ProgressSink


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why one file failed: the error's class name, its short code and message."""

    name: str
    code: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        """Describe ``exc``; anything outside the taxonomy is an internal error."""
        if isinstance(exc, HaulerError):
            return cls(type(exc).__name__, exc.error_class.value, exc.message)
        return cls(type(exc).__name__, "internal", str(exc) or type(exc).__name__)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """How one file of a ``get`` ended: a verified result or an error."""

    url: str
    elapsed_s: float
    result: Outcome | None = None
    error: ErrorInfo | None = None
    checksum_algorithm: str | None = None  # of the expected checksum the result's digest is in

    @property
    def is_ok(self) -> bool:
        """True when the file is complete and verified (or was already)."""
        return self.result is not None


class Reporter(Protocol):
    """Shows a ``get`` run to the user as it goes."""

    def sink(self, spec: JobSpec) -> ProgressSink:
        """The progress sink for one file about to start."""
        ...

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """One file ended (ok or failed)."""
        ...

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """The run ended (also on interruption, with the outcomes so far)."""
        ...
