"""Where ``hauler get`` shows what happens: progress bars on a terminal, lines, JSON, or (``-q``)
only the errors; and the ``--dry-run`` listing.

Bars go to stdout when it is a terminal (and not ``--json``), else to stderr when that is a
terminal: ``hauler get --json URL > out.json`` and ``hauler get URL | tee log`` still show
progress. Per-file lines and the summary stay on stdout, failures go to stderr, and a line says
what is being retried and why (a name that does not resolve, a refused proxy) instead of
silence.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hauler.cli.report import JsonReporter, PlainReporter, emit, failure_line
from hauler.local.outcome import FileOutcome, Reporter
from hauler.models import JobSpec
from hauler.naming import name_from_response, safe_path
from hauler.progress import NullProgress, ProgressSink
from hauler.redact import Redactor, json_text, printable

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True, slots=True)
class Display:
    """The output choices of one ``get`` run."""

    json_output: bool = False
    is_quiet: bool = False
    has_progress: bool = True  # not --no-progress

    def bar_stream(self) -> TextIO | None:
        """The terminal the bars go to, or None for no bars."""
        if self.is_quiet or not self.has_progress:
            return None
        if not self.json_output and sys.stdout.isatty():
            return sys.stdout
        return sys.stderr if sys.stderr.isatty() else None

    def reporter(self, redact: Redactor, files: int) -> Reporter:
        """The reporter for a run of ``files`` files."""
        lines = self._lines(redact)
        stream = self.bar_stream()
        if stream is None:
            return lines if self.is_quiet else RetryNotices(lines, redact)
        from hauler.cli.progressview import ProgressView

        console = _console(stream)
        return ProgressView(
            redact, console, files=files, lines=None if stream is sys.stdout else lines
        )

    def _lines(self, redact: Redactor) -> Reporter:
        if self.json_output:
            return JsonReporter(redact)
        return QuietReporter(redact) if self.is_quiet else PlainReporter(redact)


def _console(stream: TextIO) -> Console:
    from rich.console import Console

    return Console(file=stream, stderr=stream is sys.stderr)


class QuietReporter(PlainReporter):
    """``-q``: failures on stderr, nothing else (the exit status says the rest)."""

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """Print a failure only."""
        if not outcome.is_ok:
            emit(failure_line(outcome, self._redact), self._err)

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """No summary."""
        return None


class RetryNotices:
    """A text reporter whose files' retries are said on stderr, one line each."""

    def __init__(self, inner: Reporter, redact: Redactor, err: TextIO | None = None) -> None:
        self._inner = inner
        self._redact = redact
        self._err = err or sys.stderr

    def sink(self, spec: JobSpec) -> ProgressSink:
        """A sink that prints retries (text output shows no progress)."""
        return _RetryNotice(self._redact, self._err)

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """The inner reporter's line."""
        self._inner.finished(spec, outcome)

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """The inner reporter's summary."""
        self._inner.close(outcomes, elapsed_s)


class _RetryNotice(NullProgress):
    def __init__(self, redact: Redactor, err: TextIO) -> None:
        self._redact = redact
        self._err = err

    def retrying(self, message: str, attempt: int, attempts: int, delay_s: float) -> None:
        from hauler.cli.progressview import retry_line

        emit(retry_line(self._redact, message, attempt, attempts, delay_s), self._err)


def planned_path(spec: JobSpec, output_dir: Path) -> str:
    """Where ``spec`` would be saved (its own name, else the URL's; a server's
    Content-Disposition may still choose another name inside ``output_dir``)."""
    from hauler.errors import HaulerError

    name = spec.output or name_from_response(spec.url, None)
    try:
        return str(safe_path(output_dir, name))
    except HaulerError as exc:
        return f"(refused: {exc.message})"


def print_dry_run(
    specs: Sequence[JobSpec], output_dir: Path, redact: Redactor, json_output: bool
) -> None:
    """``--dry-run``: each URL and the path it would be saved to; no request, no file."""
    plan = [(redact.url(s.url), redact.text(planned_path(s, output_dir))) for s in specs]
    if json_output:
        records = [{"url": url, "path": path} for url, path in plan]
        emit(json_text(records), sys.stdout)
        return
    for url, path in plan:
        emit(printable(f"{url} -> {path}"), sys.stdout)
