"""A big ``get`` spread over forked processes: one event loop per CPU core.

Many small files make a download CPU-bound in Python (the request path, file creation); one event
loop uses one core. The parent imports the engine, then forks before any thread or event loop
exists; each child runs an ordinary ``Batch`` over its share of the files (every n-th one) and
streams what happens (file started, bytes advanced, file finished) back over a pipe. The parent
feeds those events to the one reporter, so bars, lines and the JSON summary look exactly as with
one process.

Signals: children ignore SIGINT; the parent turns Ctrl-C or SIGTERM into one SIGTERM per child,
which cancels its batch like SIGTERM cancels a one-process ``get`` (partial files are kept).
A child that dies without reporting some of its files leaves those files failed, never missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from hauler.config import TransferSettings
from hauler.local.batch import Batch, BatchOptions
from hauler.local.outcome import ErrorInfo, FileOutcome, Reporter
from hauler.models import JobSpec
from hauler.progress import ProgressSink, events_of
from hauler.redact import Redactor

if TYPE_CHECKING:  # multiprocessing loads only when files are spread (get of one URL: never)
    from multiprocessing.connection import Connection

# Below this many files or files at once per process, another process costs more than it gives.
MIN_FILES_PER_PROCESS = 32
MIN_LANES_PER_PROCESS = 8
EXIT_STATUS_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

# Events a child sends, in lists: (STARTED, index, name, total, done), (ADVANCED, index, nbytes),
# (CONNECTIONS, index, count), (RETRYING, index, message, attempt, attempts, delay_s),
# (FINISHED, index, outcome), (SPAWNED, index, spec): a job a playlist turned into, run by the
# child, under an index past the input's (child ``shard`` takes len(specs) + shard + k·processes).
STARTED, ADVANCED, CONNECTIONS, RETRYING, FINISHED, SPAWNED = "s", "a", "c", "r", "f", "n"
# A child sends its events in batches: this often at most, or sooner once this many are queued.
FLUSH_S = 0.05
FLUSH_EVENTS = 256
Event = tuple[object, ...]
SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def process_count(
    files: int, parallel: int, requested: int | None, cores: int, has_overall_limit: bool
) -> int:
    """How many processes a ``get`` of ``files`` files, ``parallel`` at once, should use.

    ``requested`` (``--processes``) wins, within the files and the parallelism. Otherwise one per
    core once each gets at least ``MIN_FILES_PER_PROCESS`` files and ``MIN_LANES_PER_PROCESS``
    files at once; an overall speed limit keeps one process (the limit is one token bucket,
    exact only in one process).
    """
    if requested is not None:
        return max(1, min(requested, files, parallel))
    if has_overall_limit:
        return 1
    by_load = min(parallel // MIN_LANES_PER_PROCESS, files // MIN_FILES_PER_PROCESS)
    return max(1, min(cores, by_load))


def available_cores() -> int:
    """CPU cores this process may run on; 1 where processes cannot be forked."""
    if not hasattr(os, "fork"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_of(total: int, shares: int, index: int) -> int:
    """Share ``index`` of ``total`` split into ``shares`` parts that differ by at most one."""
    return total // shares + (1 if index < total % shares else 0)


@dataclass
class _Child:
    """One forked process: its pid, the reading end of its pipe, the files it was given."""

    pid: int
    events: Connection
    indices: list[int]
    status: int | None = None


@dataclass(repr=False, eq=False)
class FanOut:
    """``start`` forks the children; ``collect`` then reports their events."""

    specs: Sequence[JobSpec]
    options: BatchOptions
    settings: TransferSettings
    redact: Redactor
    processes: int
    with_progress: bool
    outcomes: dict[int, FileOutcome] = field(default_factory=dict)
    _children: list[_Child] = field(default_factory=list)
    _sinks: dict[int, ProgressSink] = field(default_factory=dict)
    _spawned: dict[int, JobSpec] = field(default_factory=dict)
    _stop_signal: int | None = None
    _previous_handlers: dict[int, SignalHandler] = field(default_factory=dict)

    def start(self) -> None:
        """Fork the children (the signal handlers go in first: a Ctrl-C from now on stops
        every child)."""
        # Import the engine once here, so that every child inherits it instead of importing it.
        import hauler.pipeline.kinds
        import hauler.transfer.engine  # noqa: F401

        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            for shard in range(self.processes):
                self._children.append(self._fork(shard))
        except BaseException:  # fork failed (EAGAIN, ENOMEM): no child is left running alone
            self._on_signal(signal.SIGTERM, None)
            self._restore_handlers()
            self._reap()
            raise

    def ordered(self) -> list[FileOutcome]:
        """The outcomes so far, in input order."""
        return [self.outcomes[i] for i in sorted(self.outcomes)]

    def collect(self, reporter: Reporter) -> int:
        """Report every child's events until all have ended; 0, or 130/143 when interrupted."""
        try:
            self._drain(reporter)
        finally:
            self._restore_handlers()
            self._reap()
        if self._stop_signal is not None:
            return EXIT_STATUS_BY_SIGNAL[signal.Signals(self._stop_signal)]
        self._fail_unreported(reporter)
        return 0

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)

    def _fork(self, shard: int) -> _Child:
        indices = list(range(shard, len(self.specs), self.processes))
        from multiprocessing.connection import Pipe

        reader, writer = Pipe(duplex=False)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: whatever happens, it never returns into the parent's code
            status = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent sends SIGTERM instead
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                reader.close()
                for sibling in self._children:
                    sibling.events.close()
                status = self._child_main(shard, indices, writer)
            finally:
                os._exit(status)
        writer.close()
        if self._stop_signal is not None:  # interrupted while forking
            os.kill(pid, signal.SIGTERM)
        return _Child(pid, reader, indices)

    def _child_main(self, shard: int, indices: list[int], writer: Connection) -> int:
        """Run this child's share; its exit status (the parent reads the outcomes, not this)."""
        mine = [self.specs[i] for i in indices]
        parallel = share_of(self.options.parallel, self.processes, shard)
        options = dataclasses.replace(self.options, parallel=parallel)
        index_of = {id(spec): i for spec, i in zip(mine, indices, strict=True)}
        events = _EventPipe(writer)
        spawned_indices = itertools.count(len(self.specs) + shard, self.processes)
        reporter = _PipeReporter(events, index_of, self.with_progress, spawned_indices)
        batch = Batch(mine, options, reporter, self.redact)
        try:
            asyncio.run(_run_and_flush(batch, self.settings, events))
        except (asyncio.CancelledError, KeyboardInterrupt):
            return EXIT_STATUS_BY_SIGNAL[signal.SIGTERM]
        except BrokenPipeError:  # the parent is gone: nobody to report to
            return 1
        except BaseException:
            traceback.print_exc()
            return 1
        finally:
            try:
                sys.stderr.flush()
            finally:
                writer.close()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first Ctrl-C or SIGTERM stops every child; later ones wait for them."""
        if self._stop_signal is not None:
            return
        self._stop_signal = signum
        for child in self._children:
            if child.status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    def _drain(self, reporter: Reporter) -> None:
        from multiprocessing.connection import Connection, wait

        live = {child.events: child for child in self._children}
        while live:
            for conn in wait(list(live)):
                assert isinstance(conn, Connection)
                try:
                    events = conn.recv()
                except EOFError:
                    live.pop(conn)
                    conn.close()
                    continue
                for event in events:
                    self._dispatch(event, reporter)

    def _dispatch(self, event: Event, reporter: Reporter) -> None:
        kind, index = event[0], event[1]
        assert isinstance(index, int)
        if kind == SPAWNED:
            spawned = event[2]
            assert isinstance(spawned, JobSpec)
            self._spawned[index] = spawned
            return
        spec = self.specs[index] if index < len(self.specs) else self._spawned[index]
        if kind == FINISHED:
            outcome = event[2]
            assert isinstance(outcome, FileOutcome)
            self._sinks.pop(index, None)
            self.outcomes[index] = outcome
            reporter.finished(spec, outcome)
            return
        sink = self._sinks.get(index)
        if sink is None:
            sink = self._sinks[index] = reporter.sink(spec)
        if kind == STARTED:
            name, total, done = event[2], event[3], event[4]
            assert isinstance(name, str) and isinstance(done, int)
            assert total is None or isinstance(total, int)
            sink.started(name, total, done)
        elif kind == ADVANCED:
            nbytes = event[2]
            assert isinstance(nbytes, int)
            sink.advanced(nbytes)
        else:
            _dispatch_event(event, sink)

    def _reap(self) -> None:
        for child in self._children:
            if child.status is None:
                _, status = os.waitpid(child.pid, 0)
                child.status = status

    def _fail_unreported(self, reporter: Reporter) -> None:
        """A file whose child ended without its outcome failed (the child crashed or was
        killed)."""
        for child in self._children:
            for index in child.indices:
                if index in self.outcomes:
                    continue
                message = (
                    f"the download process {child.pid} {_ended(child.status)} "
                    "before this file finished; run the same command again to resume"
                )
                outcome = FileOutcome(
                    self.specs[index].url, 0.0, error=ErrorInfo("ProcessDied", "lost", message)
                )
                self.outcomes[index] = outcome
                reporter.finished(self.specs[index], outcome)


def _dispatch_event(event: Event, sink: ProgressSink) -> None:
    """A ``TransferEvents`` event from a child, to the parent's sink of that file."""
    events = events_of(sink)
    if event[0] == CONNECTIONS:
        count = event[2]
        assert isinstance(count, int)
        events.connections(count)
    elif event[0] == RETRYING:
        message, attempt, attempts, delay_s = event[2:6]
        assert isinstance(message, str) and isinstance(delay_s, float)
        assert isinstance(attempt, int) and isinstance(attempts, int)
        events.retrying(message, attempt, attempts, delay_s)


async def _run_and_flush(batch: Batch, settings: TransferSettings, events: _EventPipe) -> None:
    """Run the batch; whatever ends it, the outcomes so far reach the parent."""
    try:
        await batch.run(settings)
    finally:
        events.flush()


def _ended(status: int | None) -> str:
    """How a child ended, from its wait status."""
    if status is None:
        return "ended"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class _EventPipe:
    """A child's events, sent to the parent in batches: at most every ``FLUSH_S`` or
    ``FLUSH_EVENTS`` events, so that small files cost the parent one wake-up per batch, not per
    file. Used from the child's event loop only."""

    def __init__(self, writer: Connection) -> None:
        self._writer = writer
        self._pending: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None

    def put(self, event: Event) -> None:
        """Queue ``event``; it leaves with the next batch."""
        self._pending.append(event)
        if len(self._pending) >= FLUSH_EVENTS:
            self.flush()
        elif self._timer is None:
            # Wall clock on purpose: a display flush from a sync hot path; no outcome waits on it.
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        """Send what is queued now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            batch, self._pending = self._pending, []
            self._writer.send(batch)


class _PipeReporter:
    """A child's reporter: every event goes to the parent over the pipe."""

    def __init__(
        self,
        events: _EventPipe,
        index_of: dict[int, int],
        with_progress: bool,
        spawned_indices: Iterator[int],
    ) -> None:
        self._events = events
        self._index_of = index_of
        self.with_progress = with_progress
        self._spawned_indices = spawned_indices
        self._spawned: list[JobSpec] = []  # kept alive: their ids key ``index_of``

    def sink(self, spec: JobSpec) -> ProgressSink:
        """A sink that forwards retries, and progress when the parent shows bars."""
        return _PipeSink(self._events, self._index(spec), self.with_progress)

    def finished(self, spec: JobSpec, outcome: FileOutcome) -> None:
        """Send the outcome."""
        self._events.put((FINISHED, self._index(spec), outcome))

    def _index(self, spec: JobSpec) -> int:
        """The parent's index of ``spec``; a spawned one is announced to the parent first."""
        index = self._index_of.get(id(spec))
        if index is None:
            index = self._index_of[id(spec)] = next(self._spawned_indices)
            self._spawned.append(spec)
            self._events.put((SPAWNED, index, spec))
        return index

    def close(self, outcomes: Sequence[FileOutcome], elapsed_s: float) -> None:
        """The parent prints the summary."""
        return None


@dataclass(frozen=True, slots=True)
class _PipeSink:
    """One file's progress, forwarded to the parent."""

    events: _EventPipe
    index: int
    with_progress: bool

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        if self.with_progress:
            self.events.put((STARTED, self.index, name, total_bytes, done_bytes))

    def advanced(self, nbytes: int) -> None:
        if self.with_progress:
            self.events.put((ADVANCED, self.index, nbytes))

    def connections(self, count: int) -> None:
        if self.with_progress:
            self.events.put((CONNECTIONS, self.index, count))

    def retrying(self, message: str, attempt: int, attempts: int, delay_s: float) -> None:
        self.events.put((RETRYING, self.index, message, attempt, attempts, float(delay_s)))
