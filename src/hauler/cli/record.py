"""``hauler record``: record live rooms now, in the foreground, every room at once.

Each room is a ``live`` job through one ``Pipeline`` (the worker's code path, parts flushed to
disk as they land). Ctrl-C or SIGTERM asks every recording to stop: each closes its open part,
which is probed and renamed like the others, and the command lists where the parts are; a
second Ctrl-C cancels at once. Heavy modules (the engine, aiohttp) load inside the command.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hauler.cli import liveoptions
from hauler.cli.app import app, globals_of, usage_error
from hauler.exitcodes import ExitCode, exit_status
from hauler.models import JobKind, JobSpec, LiveOptions
from hauler.redact import Redactor, json_text, printable

if TYPE_CHECKING:
    from hauler.cli.recordview import RecordView, RoomSink
    from hauler.config import Settings
    from hauler.local.outcome import ErrorInfo
    from hauler.pipeline.handler import Continuation
    from hauler.pipeline.outcome import Outcome
    from hauler.pipeline.run import Pipeline
    from hauler.store.base import InfoCache
    from hauler.transfer.engine import Engine

_log = logging.getLogger(__name__)

Urls = Annotated[
    list[str] | None,
    typer.Argument(help="Rooms: live playlist, FLV or room page URLs.", metavar="URL..."),
]
OutputDir = Annotated[
    Path | None,
    typer.Option("-o", "--output-dir", help="Directory for the parts (default: here)."),
]
RoomsFile = Annotated[
    str | None,
    typer.Option(
        "-i",
        "--input-file",
        help='Rooms: one URL a line, or JSON lines {"url": ..., "output": ..., "live": {...}} '
        "(- for stdin).",
    ),
]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per room on stdout at the end.")
]
SIGNAL_STATUS = {signal.SIGINT: ExitCode.INTERRUPTED, signal.SIGTERM: ExitCode.TERMINATED}


@dataclass
class Room:
    """One room of the run: its job, its stop request, and how it ended."""

    spec: JobSpec
    continuation: Continuation
    sink: RoomSink
    outcome: Outcome | None = None
    error: ErrorInfo | None = None
    is_stopped: bool = False
    saved: dict[str, Any] = field(default_factory=dict)  # the result the handler saved last

    @property
    def live(self) -> Mapping[str, Any]:
        """The recording's summary: parts, gaps, end (the saved one when it was stopped)."""
        from hauler.pipeline.outcome import result_record

        record = result_record(self.outcome) if self.outcome is not None else self.saved
        live = record.get("live", record)
        return live if isinstance(live, Mapping) else {}


@app.command("record")
def record_command(
    ctx: typer.Context,
    urls: Urls = None,
    *,
    output_dir: OutputDir = None,
    input_file: RoomsFile = None,
    split: liveoptions.Split = None,
    max_duration: liveoptions.MaxDuration = None,
    poll: liveoptions.Poll = None,
    offline_grace: liveoptions.OfflineGrace = None,
    watch: liveoptions.Watch = False,
    format_text: liveoptions.LiveFormat = None,
    container: liveoptions.ContainerOpt = None,
    remux: liveoptions.RemuxOpt = None,
    notify_url: liveoptions.NotifyUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Record live rooms into parts (MPEG-TS, playable on their own) until their streams end.

    Every room records at once. A room not live yet is asked again every --poll; --watch
    records its next sessions too. Ctrl-C or SIGTERM closes every open part (probed, under its
    final name) and lists them; a second Ctrl-C cancels at once.

    Exit status: 0 when every room recorded to its end; when rooms failed, the code of their
    one cause (4 not found, 5 forbidden, 6 network, 7 local disk, 8 content) or 1 for mixed
    causes; 2 for usage errors or bad lines in -i; 130 on Ctrl-C, 143 on SIGTERM.
    """
    live = (
        liveoptions.live_fields(
            split=split,
            max_duration=max_duration,
            poll=poll,
            offline_grace=offline_grace,
            watch=watch,
            container=container,
            remux=remux,
            notify_url=notify_url,
            format_text=format_text,
        )
        or LiveOptions()
    )
    specs, bad = room_specs(urls or [], input_file, live)
    for line in bad:
        typer.echo(f"hauler: {line}", err=True)
    if not specs:
        usage_error("no room to record: give a URL, or -i FILE" if not bad else "no good room")
    where = _output_dir(output_dir)
    redact = Redactor.for_run(specs, None)
    status, rooms = _run(specs, globals_of(ctx).settings, where, redact)
    _report(rooms, redact, json_output, status)
    if status:
        raise typer.Exit(status)
    errors = [room.error.code for room in rooms if room.error is not None]
    code = exit_status(errors) or (ExitCode.USAGE if bad else ExitCode.OK)
    raise typer.Exit(int(code))


# --- the rooms ------------------------------------------------------------------------------


def room_specs(
    urls: Iterable[str], input_file: str | None, live: LiveOptions
) -> tuple[list[JobSpec], list[str]]:
    """The rooms' live jobs, and a one-line reason for each bad argument or line (``FILE line
    N: reason``): the good ones record all the same. A line's own live options win over
    ``live`` (the command's), option by option."""
    from hauler import intake
    from hauler.cli.joblist import unique_jobs
    from hauler.redact import redact_url

    specs: list[JobSpec] = []
    bad: list[str] = []
    for url in urls:
        try:
            specs.append(JobSpec(url=intake.validate_url(url), kind=JobKind.LIVE, live=live))
        except ValueError as exc:
            bad.append(f"{printable(redact_url(url.strip()))[:100]}: {exc}")
    if input_file is not None:
        lines, source = _lines_of(input_file, bad)
        for number, line in enumerate(lines, start=1):
            try:
                spec = _room_of(line, live)
            except ValueError as exc:
                bad.append(f"{printable(source)} line {number}: {printable(str(exc))}")
            else:
                specs += [spec] if spec is not None else []
    return unique_jobs(specs), bad


def _lines_of(path: str, bad: list[str]) -> tuple[list[str], str]:
    """The lines of the rooms file (``-``: stdin) and its name; a file that cannot be read
    is a bad line of its own."""
    # Bytes that are not UTF-8 stay (as surrogates) for the line parser to name their line.
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape").splitlines(), "stdin"
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        bad.append(f"cannot read {printable(path)}: {exc.strerror or exc}")
        return [], path
    return text.splitlines(), path


def _room_of(line: str, live: LiveOptions) -> JobSpec | None:
    """The live job of one line (None for a blank line or a comment); ``ValueError`` if bad."""
    from hauler import intake

    spec = intake.parse_line(line, {"kind": JobKind.LIVE, "live": live})
    if spec is None:
        return None
    if spec.kind not in (JobKind.AUTO, JobKind.LIVE):
        raise ValueError(f"kind: record runs live jobs, not {spec.kind.value}")
    own = spec.live
    merged = live if own is None else live.model_copy(update=_set_fields(own))
    # Validated again: a line's option must not slip past the model's bounds.
    merged = LiveOptions.model_validate(merged.model_dump())
    return spec.model_copy(update={"kind": JobKind.LIVE, "live": merged})


def _set_fields(options: LiveOptions) -> dict[str, Any]:
    """The options a line set itself (not the model's defaults)."""
    return {name: getattr(options, name) for name in options.model_fields_set}


def _output_dir(output_dir: Path | None) -> Path:
    """The parts' directory, created; a usage error (exit 2) when that is impossible."""
    where = output_dir or Path()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        usage_error(f"-o: cannot create {printable(str(where))}: {exc.strerror or exc}")
    return where


# --- the run --------------------------------------------------------------------------------


def _run(
    specs: list[JobSpec], settings: Settings, output_dir: Path, redact: Redactor
) -> tuple[int, list[Room]]:
    """Record every room in one event loop: the signal status (0 when none came) and the
    rooms."""
    from hauler.cli.recordview import RecordView

    view = RecordView(redact)
    stopper = _Stopper()
    rooms: list[Room] = []
    try:
        asyncio.run(
            _record_all(
                specs,
                settings=settings,
                output_dir=output_dir,
                view=view,
                stopper=stopper,
                rooms=rooms,
            )
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        # A second signal: nothing waited for the open parts (their .part files stay).
        stopper.is_cancelled = True
    finally:
        view.close()
    if stopper.is_cancelled:
        typer.echo("hauler: cancelled; the open parts were left unfinished (*.part)", err=True)
    return stopper.status, rooms


class _Stopper:
    """Ctrl-C and SIGTERM: the first asks every room to stop cleanly, the second cancels."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.is_cancelled = False
        self._stops: list[asyncio.Event] = []
        self._task: asyncio.Task[Any] | None = None

    @property
    def status(self) -> int:
        """The exit status the signal asks for; 0 when none came."""
        return 0 if self.signum is None else int(SIGNAL_STATUS[signal.Signals(self.signum)])

    def install(self, stops: list[asyncio.Event]) -> None:
        """Handle both signals in the running loop, for the rooms of ``stops``."""
        self._stops = stops
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in SIGNAL_STATUS:
            loop.add_signal_handler(signum, self._signalled, signum)

    def uninstall(self) -> None:
        """Give both signals back to their default handlers."""
        loop = asyncio.get_running_loop()
        for signum in SIGNAL_STATUS:
            loop.remove_signal_handler(signum)

    def _signalled(self, signum: int) -> None:
        if self.signum is not None:
            if self._task is not None:
                self._task.cancel()
            return
        self.signum = signum
        typer.echo("hauler: stopping: closing the open parts (Ctrl-C again cancels)", err=True)
        for stop in self._stops:
            stop.set()


async def _record_all(
    specs: list[JobSpec],
    *,
    settings: Settings,
    output_dir: Path,
    view: RecordView,
    stopper: _Stopper,
    rooms: list[Room],
) -> None:
    """Every room through one engine and one pipeline, all at once; ``rooms`` fills in."""
    from hauler.local.infocache import LazyInfoCache
    from hauler.transfer.engine import Engine

    rooms += [_room(spec, view) for spec in specs]
    stopper.install([room.continuation.stop for room in rooms])
    cache = LazyInfoCache(settings.store)
    try:
        async with Engine(settings.transfer) as engine:
            pipeline = _pipeline(engine, cache, output_dir)
            async with asyncio.TaskGroup() as group:
                for index, room in enumerate(rooms):
                    group.create_task(_record_room(room, index, pipeline, view))
    finally:
        stopper.uninstall()
        await cache.close()


def _room(spec: JobSpec, view: RecordView) -> Room:
    """A room with its sink and continuation; what the handler saves lands on it."""
    from hauler.pipeline.handler import Continuation

    sink = view.sink(spec.url)
    room: Room

    async def save(result: dict[str, Any]) -> None:
        room.saved = result
        view.gaps(sink.row, len(room.live.get("gaps", ())))

    room = Room(spec, Continuation(save=save), sink)
    return room


def _pipeline(engine: Engine, cache: InfoCache, output_dir: Path) -> Pipeline:
    """The run's pipeline: every kind (a room page resolves through the media extractors),
    each part flushed to disk before it counts as recorded."""
    from hauler.pipeline.kinds import resolver_for
    from hauler.pipeline.run import Pipeline

    return Pipeline(resolver_for(engine, cache), output_dir, durable=True)


async def _record_room(room: Room, index: int, pipeline: Pipeline, view: RecordView) -> None:
    """One room to its end; every failure is the room's, never the other rooms'."""
    from hauler.errors import HaulerError, Interrupted
    from hauler.local.outcome import ErrorInfo

    row = room.sink.row
    try:
        room.outcome = await pipeline.run(room.spec, room.sink, str(index), room.continuation)
    except Interrupted:
        room.is_stopped = True
        view.change(row, "stopped")
        return
    except HaulerError as exc:
        room.error = ErrorInfo.of(exc)
    except Exception as exc:  # a bug below us must not end the other rooms
        _log.error("internal error on %s: %s", view.redact.url(room.spec.url), _detail(exc))
        room.error = ErrorInfo.of(exc)
    if room.error is not None:
        view.change(row, "failed", room.error.message)
        return
    live = room.live
    view.gaps(row, len(live.get("gaps", ())))
    view.change(row, "ended", recorded_s=float(live.get("recorded_s") or 0.0))


def _detail(exc: Exception) -> str:
    """``exc`` for the log; its traceback at DEBUG."""
    if _log.isEnabledFor(logging.DEBUG):
        return "".join(traceback.format_exception(exc))
    return repr(exc)


# --- the report -----------------------------------------------------------------------------


def _report(rooms: list[Room], redact: Redactor, as_json: bool, status: int) -> None:
    """Each room's parts and gaps: text on stdout, or one JSON object per room."""
    for room in rooms:
        if as_json:
            print(json_text(room_record(room, redact)), flush=True)
        else:
            for line in room_lines(room, redact):
                print(line, flush=True)
    if status:
        parts = sum(len(room.live.get("parts", ())) for room in rooms)
        typer.echo(f"hauler: stopped; {parts} parts closed (listed above)", err=True)


def room_record(room: Room, redact: Redactor) -> dict[str, Any]:
    """One room as ``--json`` prints it: URL (redacted), parts, gaps, end, error."""
    live = room.live
    error = None
    if room.error is not None:
        error = {"class": room.error.code, "message": redact.text(room.error.message)}
    return {
        "url": redact.url(room.spec.url),
        "parts": list(live.get("parts", [])),
        "gaps": list(live.get("gaps", [])),
        "end": "stopped" if room.is_stopped else live.get("end"),
        "recorded_s": live.get("recorded_s"),
        "missing_s": live.get("missing_s"),
        **({"sessions": live["sessions"]} if "sessions" in live else {}),
        "error": error,
    }


def room_lines(room: Room, redact: Redactor) -> list[str]:
    """A room's summary: a heading, then a line per part and per gap."""
    from hauler.cli.recordview import clock_text
    from hauler.cli.report import format_size

    record = room_record(room, redact)
    heading = f"{printable(record['url'])}: {len(record['parts'])} parts"
    heading += f", {clock_text(float(record['recorded_s'] or 0.0))} recorded"
    heading += f", {len(record['gaps'])} gaps" if record["gaps"] else ""
    if room.error is not None:
        heading += f"; failed: {printable(redact.text(room.error.message))}"
    elif record["end"]:
        heading += f"; end: {printable(str(record['end']))}"
    lines = [heading]
    for part in record["parts"]:
        duration = float(part.get("duration_s") or 0.0)
        size = format_size(int(part.get("bytes") or 0))
        lines.append(f"  {printable(str(part.get('path')))}  {duration:.1f} s  {size}")
    for gap in record["gaps"]:
        after, missing = float(gap.get("after_s", 0.0)), float(gap.get("missing_s", 0.0))
        lines.append(f"  gap after {clock_text(after)}: {missing:.1f} s missing")
    return lines
