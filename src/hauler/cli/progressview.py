"""Progress bars on a terminal: one per running file and one for the whole run (rich)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

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
from rich.text import Text

from hauler.cli.ratemeter import RateMeter
from hauler.cli.report import (
    FileOutcome,
    failure_line,
    format_size,
    success_line,
    summary_line,
)
from hauler.models import JobSpec
from hauler.redact import Redactor
from hauler.transfer.request import ProgressSink

_NAME_WIDTH = 32


class _FileBar:
    """The ``ProgressSink`` of one file: feeds its own bar and the overall one."""

    def __init__(self, view: ProgressView, task: TaskID) -> None:
        self._view = view
        self.task = task

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        """Name the bar and set its size; bytes already on disk count as done."""
        self._view.file_started(self.task, name, total_bytes, done_bytes)

    def advanced(self, nbytes: int) -> None:
        """Move this file's bar and the overall bar."""
        self._view.advance(self.task, nbytes)


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
    """Time left at the meter's speed; dashes while the size or the speed is unknown."""

    def render(self, task: Task) -> Text:
        speed = self._speed(task)
        if task.total is None or not speed:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(max(0.0, task.total - task.completed) / speed), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class ProgressView:
    """A live rich display; ``close`` stops it and prints the summary."""

    def __init__(self, redact: Redactor, console: Console | None = None) -> None:
        self._redact = redact
        # Failures show above the bars; stderr gets them too when it is not this terminal.
        self._is_stderr_elsewhere = not sys.stderr.isatty()
        self._meters: dict[TaskID, RateMeter] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            _SpeedColumn(self._meters),
            _EtaColumn(self._meters),
            console=console or Console(),
            transient=False,
        )
        self._overall = self._progress.add_task("total", total=0)
        self._meters[self._overall] = RateMeter(time.monotonic())
        self._bars: dict[int, _FileBar] = {}
        self._known_total = 0
        self._progress.start()

    def sink(self, spec: JobSpec) -> ProgressSink:
        """A bar for ``spec``, named after its URL until the file's name is known."""
        label = _shorten(self._redact.url(spec.url).rsplit("/", 1)[-1] or spec.url)
        bar = _FileBar(self, self._progress.add_task(label, total=None))
        self._bars[id(spec)] = bar
        return bar

    def file_started(
        self, task: TaskID, name: str, total_bytes: int | None, done_bytes: int
    ) -> None:
        """Size a file's bar and grow the overall total by what is now known. Bytes already on
        disk move the bars but not the speed."""
        self._meters[task] = RateMeter(time.monotonic())
        self._progress.update(task, description=_shorten(name), total=total_bytes)
        self._progress.update(task, completed=done_bytes)
        self._known_total += total_bytes or 0
        self._progress.update(self._overall, total=self._known_total)
        self._progress.advance(self._overall, done_bytes)

    def advance(self, task: TaskID, nbytes: int) -> None:
        """``nbytes`` more for one file and for the whole run."""
        now = time.monotonic()
        self._progress.advance(task, nbytes)
        self._progress.advance(self._overall, nbytes)
        for meter in (self._meters.get(task), self._meters[self._overall]):
            if meter is not None:
                meter.add(now, nbytes)

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """Replace the file's bar by its one-line outcome (failures go to stderr)."""
        bar = self._bars.pop(id(spec), None)
        if bar is not None:
            self._progress.remove_task(bar.task)
            self._meters.pop(bar.task, None)
        if outcome.is_ok:
            self._progress.console.print(success_line(outcome), markup=False, highlight=False)
        else:
            line = failure_line(outcome, self._redact)
            self._progress.console.print(line, style="red", markup=False, highlight=False)
            if self._is_stderr_elsewhere:
                print(line, file=sys.__stderr__, flush=True)

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """Stop the display and print the summary."""
        self._progress.stop()
        self._progress.console.print(summary_line(outcomes, elapsed_s), highlight=False)


def _shorten(name: str) -> str:
    """Fit a name in the label column, keeping its end (the extension)."""
    return name if len(name) <= _NAME_WIDTH else "…" + name[-(_NAME_WIDTH - 1) :]
