"""What ``hauler get`` tells the user: one outcome per file, plain lines or one JSON summary.

Secrets (URL passwords, proxy credentials, sensitive header values) are masked in everything
printed here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hauler.local.outcome import ErrorInfo, FileOutcome
from hauler.models import JobSpec
from hauler.pipeline.outcome import Outcome, result_record
from hauler.progress import NullProgress, ProgressSink
from hauler.redact import Redactor, json_text, printable


def format_size(nbytes: float) -> str:
    """``1536`` → ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def outcome_record(outcome: FileOutcome, redact: Redactor) -> dict[str, Any]:
    """The JSON record of one file, as ``--json`` prints it."""
    record: dict[str, Any] = {"url": redact.url(outcome.url), "ok": outcome.is_ok}
    if outcome.result is not None:
        record |= _result_fields(outcome.result, outcome.checksum_algorithm, redact)
    record["elapsed_s"] = round(outcome.elapsed_s, 3)
    error = outcome.error
    record["error"] = (
        None if error is None else {"class": error.code, "message": redact.text(error.message)}
    )
    return record


def _result_fields(
    result: Outcome, default_algorithm: str | None, redact: Redactor
) -> dict[str, Any]:
    """The JSON fields of a finished transfer (the pipeline's record, secrets masked)."""
    record = result_record(result)
    record["final_url"] = redact.url(result.final_url)
    algorithm, digest = _digest_of(
        result.primary.checksum if result.primary else None, default_algorithm
    )
    if digest:
        record["checksum"] = f"{algorithm}={digest}" if algorithm else digest
    if algorithm == "sha256":
        record["sha256"] = digest
    return record


def _digest_of(checksum: str | None, default_algorithm: str | None) -> tuple[str | None, str]:
    """``(algorithm, hexdigest)`` of a result's checksum, written ``HEX`` or ``ALGO=HEX``."""
    if not checksum:
        return None, ""
    algorithm, sep, digest = checksum.rpartition("=")
    return (algorithm if sep else default_algorithm), digest


def summary_record(
    outcomes: Sequence[FileOutcome], elapsed_s: float, redact: Redactor
) -> dict[str, Any]:
    """The whole run as ``--json`` prints it."""
    return {
        "files": [outcome_record(o, redact) for o in outcomes],
        "ok": sum(1 for o in outcomes if o.is_ok),
        "failed": sum(1 for o in outcomes if not o.is_ok),
        "bytes": sum(o.result.bytes_fetched for o in outcomes if o.result is not None),
        "elapsed_s": round(elapsed_s, 3),
    }


def failure_line(outcome: FileOutcome, redact: Redactor) -> str:
    """``failed URL: Class: message`` for stderr."""
    error = outcome.error or ErrorInfo("Error", "internal", "unknown failure")
    # The message may quote the server (a redirect target, a name): no escapes reach the tty.
    line = f"failed {redact.url(outcome.url)}: {error.code}: {redact.text(error.message)}"
    return printable(line)


def success_line(outcome: FileOutcome) -> str:
    """``done PATH (SIZE in Ns, RATE/s)`` or ``skipped PATH (already complete)``."""
    result = outcome.result
    assert result is not None
    if result.primary is None:
        return f"expanded {printable(outcome.url)} into {len(result.spawned)} entries"
    path = printable(str(result.primary.path))  # the name may come from the server
    if result.skipped:
        return f"skipped {path} (already complete, {format_size(result.size)})"
    rate = result.bytes_fetched / outcome.elapsed_s if outcome.elapsed_s > 0 else 0.0
    return (
        f"done {path} ({format_size(result.size)} in {outcome.elapsed_s:.1f} s, "
        f"{format_size(rate)}/s)"
    )


def summary_line(outcomes: Sequence[FileOutcome], elapsed_s: float) -> str:
    """``3 ok, 1 failed: 12.0 MiB in 1.2 s (10.0 MiB/s)``."""
    ok = sum(1 for o in outcomes if o.is_ok)
    fetched = sum(o.result.bytes_fetched for o in outcomes if o.result is not None)
    rate = fetched / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{ok} ok, {len(outcomes) - ok} failed: {format_size(fetched)} in {elapsed_s:.1f} s "
        f"({format_size(rate)}/s)"
    )


def emit(line: str, stream: TextIO) -> None:
    """Print one line; when the reader went away (``| head``), keep working silently."""
    try:
        print(line, file=stream, flush=True)
    except BrokenPipeError:
        # Point the descriptor at /dev/null so that later writes and the exit flush succeed.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class _TextReporter:
    """What the reporters without progress bars share: where they write, and no progress."""

    def __init__(self, redact: Redactor, out: TextIO | None = None, err: TextIO | None = None):
        self._redact = redact
        self._out = out or sys.stdout
        self._err = err or sys.stderr

    def sink(self, spec: JobSpec) -> ProgressSink:
        """Text output shows no progress."""
        return NullProgress()


class PlainReporter(_TextReporter):
    """For pipes and logs: one line per file on stdout (failures on stderr), then a summary."""

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """Print the file's line."""
        if outcome.is_ok:
            emit(success_line(outcome), self._out)
        else:
            emit(failure_line(outcome, self._redact), self._err)

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """Print the summary."""
        emit(summary_line(outcomes, elapsed_s), self._out)


class JsonReporter(_TextReporter):
    """For scripts: failures on stderr as they happen, one JSON object on stdout at the end."""

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """Report a failure on stderr; successes wait for the summary."""
        if not outcome.is_ok:
            emit(failure_line(outcome, self._redact), self._err)

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """Print the summary object."""
        summary = summary_record(outcomes, elapsed_s, self._redact)
        emit(json_text(summary), self._out)
