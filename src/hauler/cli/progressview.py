"""Progress bars on a terminal: one per running file and one for the whole run (rich).

The overall bar counts every file of the batch, started or not: ``3/300 files``, a percentage
of the files (a running file counts by its share of bytes), and the bytes of the sizes known so
far. Each file's bar shows its connection count. The bars go to whichever terminal the run has
(stdout, or stderr when stdout is a pipe or carries ``--json``); per-file lines then go where
``lines`` (a text reporter) prints them. Every name, URL and message shown is redacted and made
printable (a server chooses names and error texts).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.progress_bar import ProgressBar
from rich.text import Text

from hauler.cli.logs import route_to_console
from hauler.cli.ratemeter import RateMeter
from hauler.cli.report import failure_line, format_size, success_line, summary_line
from hauler.local.outcome import FileOutcome, Reporter
from hauler.models import JobSpec
from hauler.progress import ProgressSink
from hauler.redact import Redactor, printable

_NAME_WIDTH = 32
_BAR_STEPS = 1000  # the overall bar's resolution


class _FileBar:
    """The ``ProgressSink`` (and ``TransferEvents``) of one file: feeds its own bar and the
    overall one."""

    def __init__(self, view: ProgressView, task: TaskID) -> None:
        self._view = view
        self.task = task
        self.total_bytes: int | None = None
        self.share = 0.0  # of its file done, as counted in the overall bar

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        """Name the bar and set its size; bytes already on disk count as done."""
        self._view.file_started(self, name, total_bytes, done_bytes)

    def advanced(self, nbytes: int) -> None:
        """Move this file's bar and the overall bar."""
        self._view.advance(self, nbytes)

    def connections(self, count: int) -> None:
        """The file now runs on ``count`` connections."""
        self._view.connections[self.task] = count

    def retrying(self, message: str, attempt: int, attempts: int, delay_s: float) -> None:
        """Say above the bars what is being retried and why."""
        self._view.note(retry_line(self._view.redact, message, attempt, attempts, delay_s))


def retry_line(redact: Redactor, message: str, attempt: int, attempts: int, delay_s: float) -> str:
    """``retrying http://h/x: cannot resolve h (...) (attempt 2 of 6, next in 1.0 s)``."""
    text = printable(redact.text(message))
    return f"retrying {text} (attempt {attempt} of {attempts}, next in {delay_s:.1f} s)"


@dataclass
class _Batch:
    """The whole run as the overall bar shows it."""

    files: int
    finished: int = 0
    sized: int = 0  # files whose size is known
    known_bytes: int = 0
    running_share: float = 0.0  # the running files' shares of their bytes, summed

    @property
    def fraction(self) -> float:
        """Finished files, plus each running file's share of its bytes, over all files."""
        if not self.files:
            return 0.0
        return max(0.0, min(1.0, (self.finished + self.running_share) / self.files))


Fraction = Callable[[Task], "float | None"]


class _MeterColumn(ProgressColumn):
    """A column computed from the bar's ``RateMeter`` at each refresh."""

    def __init__(self, meters: dict[TaskID, RateMeter]) -> None:
        super().__init__()
        self._meters = meters

    def _speed(self, task: Task) -> float | None:
        meter = self._meters.get(task.id)
        return None if meter is None else meter.rate(time.monotonic())


class _SpeedColumn(_MeterColumn):
    """The bar's speed: downloaded bytes only, over seconds."""

    def render(self, task: Task) -> Text:
        speed = self._speed(task)
        text = "?" if speed is None else f"{format_size(speed)}/s"
        return Text(text, style="progress.data.speed")


class _EtaColumn(_MeterColumn):
    """Time left at the meter's speed; dashes while the size or the speed is unknown (the
    overall bar's size is known once every file's is)."""

    def render(self, task: Task) -> Text:
        speed = self._speed(task)
        if task.total is None or not speed or not task.fields.get("is_sized", True):
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(max(0.0, task.total - task.completed) / speed), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class _ConnectionsColumn(ProgressColumn):
    """``x4``: the connections a file runs on now (blank for the overall bar)."""

    def __init__(self, connections: dict[TaskID, int]) -> None:
        super().__init__()
        self._connections = connections

    def render(self, task: Task) -> Text:
        count = self._connections.get(task.id)
        return Text(f"x{count}" if count else "", style="progress.download", justify="right")


class _FractionBar(BarColumn):
    """A bar at ``fraction(task)`` when that is not None (the overall bar: files, not the bytes
    known so far), else at completed/total."""

    def __init__(self, fraction: Fraction) -> None:
        super().__init__()
        self._fraction = fraction

    def render(self, task: Task) -> ProgressBar:
        fraction = self._fraction(task)
        if fraction is None:
            return super().render(task)
        return ProgressBar(
            total=_BAR_STEPS,
            completed=fraction * _BAR_STEPS,
            width=None if self.bar_width is None else max(1, self.bar_width),
            pulse=False,
            animation_time=task.get_time(),
        )


class _PercentColumn(ProgressColumn):
    """The bar's percentage (the overall bar's over files)."""

    def __init__(self, fraction: Fraction) -> None:
        super().__init__()
        self._fraction = fraction

    def render(self, task: Task) -> Text:
        fraction = self._fraction(task)
        if fraction is None:
            fraction = task.completed / task.total if task.total else None
        text = "" if fraction is None else f"{100 * min(1.0, fraction):3.0f}%"
        return Text(text, style="progress.percentage", justify="right")


class ProgressView:
    """A live rich display; ``close`` stops it and prints the summary.

    ``files`` is the batch's size (the overall bar counts every file); ``lines``, when given,
    prints the per-file success lines and the summary instead of this view's console (the bars
    are on stderr, the lines on stdout).
    """

    def __init__(
        self,
        redact: Redactor,
        console: Console | None = None,
        *,
        files: int = 0,
        lines: Reporter | None = None,
    ) -> None:
        self.redact = redact
        self._console = console or Console()
        self._lines = lines
        # Failures show above the bars; stderr gets them too when it is not this terminal.
        self._is_stderr_elsewhere = self._console.file is not sys.stderr and not _is_tty(sys.stderr)
        self._meters: dict[TaskID, RateMeter] = {}
        self.connections: dict[TaskID, int] = {}
        self._batch = _Batch(files)
        self._progress = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            _ConnectionsColumn(self.connections),
            _FractionBar(self._fraction_of),
            _PercentColumn(self._fraction_of),
            DownloadColumn(binary_units=True),
            _SpeedColumn(self._meters),
            _EtaColumn(self._meters),
            console=self._console,
            transient=False,
        )
        self._overall = self._progress.add_task(self._overall_label(), total=0, is_sized=files == 0)
        self._meters[self._overall] = RateMeter(time.monotonic())
        self._bars: dict[int, _FileBar] = {}
        self._progress.start()
        self._restore_logs = route_to_console(self._console)

    def sink(self, spec: JobSpec) -> ProgressSink:
        """A bar for ``spec``, named after its URL until the file's name is known."""
        url = self.redact.url(spec.url)
        label = _shorten(printable(url.rsplit("/", 1)[-1] or url))
        bar = _FileBar(self, self._progress.add_task(label, total=None))
        self._bars[id(spec)] = bar
        return bar

    def file_started(
        self, bar: _FileBar, name: str, total_bytes: int | None, done_bytes: int
    ) -> None:
        """Size a file's bar and grow the overall total by what is now known. Bytes already on
        disk move the bars but not the speed."""
        self._meters[bar.task] = RateMeter(time.monotonic())
        label = _shorten(printable(self.redact.text(name))) if name else None
        self._progress.update(bar.task, description=label, total=total_bytes, completed=done_bytes)
        batch = self._batch
        batch.running_share -= bar.share  # a restarted transfer starts its share again
        bar.total_bytes, bar.share = total_bytes, 0.0
        if total_bytes is not None:
            batch.known_bytes += total_bytes
            batch.sized += 1
        self._progress.update(
            self._overall, total=batch.known_bytes, is_sized=batch.sized >= batch.files
        )
        self._grow_share(bar, done_bytes)
        self._progress.advance(self._overall, done_bytes)

    def advance(self, bar: _FileBar, nbytes: int) -> None:
        """``nbytes`` more for one file and for the whole run."""
        now = time.monotonic()
        self._progress.advance(bar.task, nbytes)
        self._progress.advance(self._overall, nbytes)
        self._grow_share(bar, nbytes)
        for meter in (self._meters.get(bar.task), self._meters[self._overall]):
            if meter is not None:
                meter.add(now, nbytes)

    def _grow_share(self, bar: _FileBar, nbytes: int) -> None:
        if bar.total_bytes:
            share = min(1.0, bar.share + nbytes / bar.total_bytes)
            self._batch.running_share += share - bar.share
            bar.share = share

    def note(self, line: str) -> None:
        """A line above the bars (a retry notice), and on stderr when that is elsewhere."""
        self._progress.console.print(line, style="yellow", markup=False, highlight=False)
        if self._is_stderr_elsewhere:
            print(line, file=sys.__stderr__, flush=True)

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """Replace the file's bar by its one-line outcome (failures go to stderr)."""
        bar = self._bars.pop(id(spec), None)
        if bar is not None:
            self._progress.remove_task(bar.task)
            self._meters.pop(bar.task, None)
            self.connections.pop(bar.task, None)
            self._batch.running_share -= bar.share
        self._batch.finished += 1
        if outcome.result is not None and self._batch.files:
            self._batch.files += len(outcome.result.spawned)  # a playlist's entries join
        self._progress.update(self._overall, description=self._overall_label())
        if not outcome.is_ok:
            line = failure_line(outcome, self.redact)
            self._progress.console.print(line, style="red", markup=False, highlight=False)
            if self._is_stderr_elsewhere:
                print(line, file=sys.__stderr__, flush=True)
        elif self._lines is not None:
            self._lines.finished(spec, outcome)
        else:
            self._progress.console.print(success_line(outcome), markup=False, highlight=False)

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """Stop the display and print the summary."""
        self._progress.stop()
        self._restore_logs()
        if self._lines is not None:
            self._lines.close(outcomes, elapsed_s)
        else:
            self._progress.console.print(summary_line(outcomes, elapsed_s), highlight=False)

    def _overall_label(self) -> str:
        batch = self._batch
        return f"{batch.finished}/{batch.files} files" if batch.files else "total"

    def _fraction_of(self, task: Task) -> float | None:
        """The overall bar's fraction (over files), None for a file's bar (over its bytes)."""
        if task.id != self._overall or not self._batch.files:
            return None
        return self._batch.fraction


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _shorten(name: str) -> str:
    """Fit a name in the label column, keeping its end (the extension)."""
    return name if len(name) <= _NAME_WIDTH else "…" + name[-(_NAME_WIDTH - 1) :]
