"""The foreground progress of ``hauler record``: one row per room, redrawn in place (rich).

Each room's sink (``RoomSink``: a ``ProgressSink`` and ``LiveEvents``) keeps its row: the
state (waiting, recording, reconnecting, ended, stopped, failed), the time since the room
started, the bytes, the bitrate over the last few seconds, the part being written, the media
recorded and the gaps so far. On a terminal the rows are a rich ``Live`` table on stderr; when
stderr is not one (a log file, a pipe) each state change is one line there instead. Every text
shown is redacted and made printable (a server chooses names and error texts).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from hauler.cli.logs import route_to_console
from hauler.cli.ratemeter import RateMeter
from hauler.cli.report import format_size
from hauler.redact import Redactor, printable

_REFRESH_PER_S = 2
FINAL_STATES = frozenset({"ended", "stopped", "failed"})
_LABEL_WIDTH = 48
STATE_STYLES = {
    "waiting": "dim",
    "recording": "green",
    "reconnecting": "yellow",
    "ended": "bold",
    "stopped": "bold",
    "failed": "red",
}


@dataclass
class RoomRow:
    """What the display knows of one room."""

    label: str
    started_at: float  # monotonic seconds
    meter: RateMeter
    state: str = "waiting"
    bytes: int = 0
    part_index: int | None = None
    recorded_s: float = 0.0
    gaps: int = 0
    message: str = ""  # why it failed
    ended_at: float | None = None  # monotonic seconds; elapsed stops there

    def elapsed_s(self, now: float) -> float:
        """Seconds since the room started, until it ended."""
        return (self.ended_at or now) - self.started_at


class RoomSink:
    """One room's ``ProgressSink`` and ``LiveEvents``: feeds its row of the view."""

    def __init__(self, view: RecordView, row: RoomRow) -> None:
        self._view = view
        self.row = row

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        """The recording started (its states come through ``live_state``)."""
        del name, total_bytes, done_bytes

    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more of the stream were written."""
        self.row.bytes += nbytes
        self.row.meter.add(time.monotonic(), nbytes)

    def live_state(self, state: str, part_index: int | None, recorded_s: float) -> None:
        """The recording is now ``state``, writing part ``part_index``, ``recorded_s`` in."""
        self._view.change(self.row, state, part_index=part_index, recorded_s=recorded_s)


class RecordView:
    """The rows of every room; ``close`` stops the display. ``is_live``: redraw a table on
    ``console`` (a terminal), else write a line per state change to ``lines``."""

    def __init__(
        self,
        redact: Redactor,
        *,
        console: Console | None = None,
        lines: TextIO | None = None,
        is_live: bool | None = None,
    ) -> None:
        self.redact = redact
        self._console = console or Console(stderr=True)
        self._lines = lines or sys.stderr
        self.rows: list[RoomRow] = []
        self._live: Live | None = None
        self._restore_logs: Callable[[], None] = _nothing
        if self._console.is_terminal if is_live is None else is_live:
            self._live = Live(
                get_renderable=self.table,
                console=self._console,
                refresh_per_second=_REFRESH_PER_S,
                transient=False,
            )
            self._live.start()
            self._restore_logs = route_to_console(self._console)

    def sink(self, url: str) -> RoomSink:
        """A row for the room at ``url`` and the sink that feeds it."""
        now = time.monotonic()
        label = printable(self.redact.url(url))
        row = RoomRow(label=label, started_at=now, meter=RateMeter(now))
        self.rows.append(row)
        return RoomSink(self, row)

    def change(
        self,
        row: RoomRow,
        state: str,
        message: str = "",
        *,
        part_index: int | None = None,
        recorded_s: float | None = None,
    ) -> None:
        """``row`` is now in ``state`` (``message``: why, for a failure), writing part
        ``part_index`` (None: as before); without a table, a line for each new state or part."""
        part_index = row.part_index if part_index is None else part_index
        is_new = (state, message, part_index) != (row.state, row.message, row.part_index)
        row.state, row.message = state, printable(self.redact.text(message))
        row.part_index = part_index
        row.recorded_s = row.recorded_s if recorded_s is None else recorded_s
        if state in FINAL_STATES and row.ended_at is None:
            row.ended_at = time.monotonic()
        if is_new and self._live is None:
            print(state_line(row), file=self._lines, flush=True)

    def gaps(self, row: RoomRow, count: int) -> None:
        """``row``'s recording has ``count`` gaps so far."""
        row.gaps = count

    def table(self) -> Table:
        """The rows as they are now (the live display's renderable)."""
        now = time.monotonic()
        table = Table(box=None, pad_edge=False, header_style="bold")
        for heading in ("room", "state", "elapsed", "bytes", "bitrate", "part", "recorded"):
            table.add_column(heading, no_wrap=True, overflow="ellipsis")
        table.add_column("gaps", justify="right")
        for row in list(self.rows):
            table.add_row(*_cells(row, now))
        return table

    def close(self) -> None:
        """Stop redrawing (the last table stays on the terminal)."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
            self._restore_logs()


def _nothing() -> None:
    return None


def _cells(row: RoomRow, now: float) -> list[str]:
    """One row of the table, as text."""
    state = row.state if not row.message else f"{row.state}: {row.message}"
    style = STATE_STYLES.get(row.state, "")
    return [
        _escape(_shorten(row.label)),
        f"[{style}]{_escape(state)}[/]" if style else _escape(state),
        clock_text(row.elapsed_s(now)),
        format_size(row.bytes),
        bitrate_text(row.meter.rate(now)),
        "-" if row.part_index is None else str(row.part_index),
        clock_text(row.recorded_s),
        str(row.gaps),
    ]


def state_line(row: RoomRow) -> str:
    """``http://h/live.m3u8: recording, part 2, 0:00:12 recorded, 1 gap`` (a log line)."""
    text = f"{row.label}: {row.state}"
    if row.message:
        text += f": {row.message}"
    if row.part_index is not None:
        text += f", part {row.part_index}"
    if row.recorded_s:
        text += f", {clock_text(row.recorded_s)} recorded"
    if row.gaps:
        text += f", {row.gaps} gap{'s' if row.gaps != 1 else ''}"
    return text


def clock_text(seconds: float) -> str:
    """``3725.4`` → ``1:02:05``."""
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def bitrate_text(bytes_per_s: float) -> str:
    """Bytes a second as bits a second: ``1.2 Mbit/s``."""
    bits = bytes_per_s * 8
    for unit in ("bit/s", "kbit/s", "Mbit/s"):
        if bits < 1000 or unit == "Mbit/s":
            return f"{bits:.0f} {unit}" if unit == "bit/s" else f"{bits:.1f} {unit}"
        bits /= 1000
    raise AssertionError("unreachable")


def _shorten(label: str) -> str:
    """Fit a room's URL in its column, keeping its end (the room's name)."""
    return label if len(label) <= _LABEL_WIDTH else "…" + label[-(_LABEL_WIDTH - 1) :]


def _escape(text: str) -> str:
    """``text`` safe inside rich markup (a ``[`` from a server would start a tag)."""
    from rich.markup import escape

    return escape(text)
