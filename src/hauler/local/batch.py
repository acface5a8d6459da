"""A ``get`` run: many files through ONE engine, at most ``parallel`` at a time, each through
the ``Pipeline`` (the same code path as a worker's lane), told to an ``Observer`` as they go.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hauler.config import HostSettings, PoolSettings, TransferSettings, default_store_url
from hauler.errors import HaulerError
from hauler.local.outcome import ErrorInfo, FileOutcome, Reporter
from hauler.models import JobSpec, OnExisting
from hauler.naming import name_from_response
from hauler.observe import Finish, NullObserver, Observer
from hauler.redact import Redactor

if TYPE_CHECKING:  # the engine (and aiohttp) load only when a download starts
    from hauler.local.infocache import LazyInfoCache
    from hauler.pipeline.run import Pipeline
    from hauler.transfer.engine import Engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """The per-run choices of ``hauler get`` that are not engine settings."""

    output_dir: Path
    parallel: int
    on_existing: OnExisting = OnExisting.RENAME
    connections: int | None = None
    per_file_rate_bps: int | None = None
    proxy: str | None = None
    store_url: str = field(default_factory=default_store_url)  # where media infos are cached
    # The store's proxy and account pools, used when it holds any; None: off (--no-pools).
    pools: PoolSettings | None = None
    # The store's per-host budgets, kept when it exists; None: off.
    hosts: HostSettings | None = None


class Batch:
    """Downloads ``specs``; ``outcomes`` fills in as files end, so an interrupted run can
    still report what finished.
    """

    def __init__(
        self,
        specs: Sequence[JobSpec],
        options: BatchOptions,
        reporter: Reporter,
        redact: Redactor,
        observer: Observer | None = None,
    ) -> None:
        self._specs = specs
        self._options = options
        self._reporter = reporter
        self._redact = redact
        self._observer = observer or NullObserver()
        self.outcomes: dict[int, FileOutcome] = {}
        self._present: frozenset[str] | None = None

    def ordered(self) -> list[FileOutcome]:
        """The outcomes so far, in input order."""
        return [self.outcomes[i] for i in sorted(self.outcomes)]

    async def run(self, settings: TransferSettings) -> None:
        """Download every spec; SIGTERM cancels like Ctrl-C does (partial files are kept)."""
        from hauler.gate import OPEN
        from hauler.local.gate import LazyGate
        from hauler.local.infocache import LazyInfoCache
        from hauler.transfer.engine import Engine

        _cancel_on_sigterm()
        self._present = _names_in(self._options.output_dir)
        cache = LazyInfoCache(self._options.store_url)
        hosts = self._options.hosts
        gate = LazyGate(cache, self._options.store_url, hosts) if hosts and hosts.enabled else None
        try:
            async with Engine(settings, gate=gate or OPEN) as engine:
                pipeline = self._pipeline(engine, cache)
                work = _Work(deque(enumerate(self._specs)), len(self._specs))
                async with asyncio.TaskGroup() as group:
                    for _ in range(self._options.parallel):
                        group.create_task(self._lane(work, pipeline))
        finally:
            if gate is not None:
                await gate.aclose()
            await cache.close()

    def _pipeline(self, engine: Engine, cache: LazyInfoCache) -> Pipeline:
        """The pipeline of this run: every kind, its options, ``--proxy`` for every job."""
        from hauler.local.pools import LazyPools
        from hauler.pipeline.acquire import FixedResources, ResourceBroker
        from hauler.pipeline.handler import RunOptions
        from hauler.pipeline.kinds import resolver_for
        from hauler.pipeline.run import Pipeline

        options = self._options
        broker: ResourceBroker = FixedResources(options.proxy)
        if options.proxy is None and options.pools is not None and options.pools.enabled:
            broker = LazyPools(cache, options.store_url, options.pools)
        return Pipeline(
            resolver_for(engine, cache),
            options.output_dir,
            options=RunOptions(options.on_existing, options.connections, options.per_file_rate_bps),
            broker=broker,
            observer=self._observer,
            durable=bool(engine.settings.fsync_files),
            on_bannable=options.pools.on_bannable if options.pools else "retry_other",
        )

    async def _lane(self, work: _Work, pipeline: Pipeline) -> None:
        """Take the next file until none is left and none running can add more (a playlist
        adds its entries, which run in this batch too)."""
        while (taken := await work.take()) is not None:
            index, spec = taken
            try:
                job_id = str(index)
                self._observer.job_started(job_id, self._redact.url(spec.url))
                self.outcomes[index] = outcome = await self._one(spec, pipeline)
                self._reporter.finished(spec, outcome)
                self._observer.job_finished(job_id, *_finish_of(outcome))
                if outcome.result is not None:
                    work.add(outcome.result.spawned)
            finally:
                work.done()

    async def _one(self, spec: JobSpec, pipeline: Pipeline) -> FileOutcome:
        """One file through the pipeline; every failure becomes an outcome, not an exception."""
        started = time.monotonic()
        try:
            job = _named_if_present(spec, self._options, self._present)
            result = await pipeline.run(job, self._reporter.sink(spec))
        except HaulerError as exc:
            return FileOutcome(spec.url, time.monotonic() - started, error=ErrorInfo.of(exc))
        except Exception as exc:  # a bug below us must not abort the other files
            self._log_internal(spec, exc)
            return FileOutcome(spec.url, time.monotonic() - started, error=ErrorInfo.of(exc))
        algorithm = spec.checksum.algorithm if spec.checksum else None
        return FileOutcome(
            spec.url, time.monotonic() - started, result=result, checksum_algorithm=algorithm
        )

    def _log_internal(self, spec: JobSpec, exc: Exception) -> None:
        """Log an error from outside the taxonomy; the traceback (at DEBUG) is masked too."""
        detail = repr(exc)
        if logger.isEnabledFor(logging.DEBUG):
            detail = "".join(traceback.format_exception(exc))
        logger.error(
            "internal error on %s: %s", self._redact.url(spec.url), self._redact.text(detail)
        )


class _Work:
    """The files still to run, shared by the lanes, growing while one that runs spawns more."""

    def __init__(self, pending: deque[tuple[int, JobSpec]], next_index: int) -> None:
        self._pending = pending
        self._next_index = next_index
        self._running = 0
        self._changed = asyncio.Event()

    async def take(self) -> tuple[int, JobSpec] | None:
        """The next file; None once nothing is pending and nothing running can add more."""
        while not self._pending:
            if not self._running:
                return None
            self._changed.clear()
            await self._changed.wait()
        self._running += 1
        return self._pending.popleft()

    def add(self, specs: Iterable[JobSpec]) -> None:
        """Queue ``specs`` after the rest (new indices, past the input's)."""
        for spec in unique_specs(specs):
            self._pending.append((self._next_index, spec))
            self._next_index += 1
        self._changed.set()

    def done(self) -> None:
        """A taken file ended."""
        self._running -= 1
        self._changed.set()


def unique_specs(specs: Iterable[JobSpec]) -> list[JobSpec]:
    """``specs`` without a second one of the same dedupe key (a video twice in a playlist)."""
    unique: dict[str, JobSpec] = {}
    for spec in specs:
        unique.setdefault(spec.dedupe_key, spec)
    return list(unique.values())


def _finish_of(outcome: FileOutcome) -> tuple[Finish, str | None, int]:
    """How ``outcome`` ends, for the observer: done or failed, the class, the bytes fetched."""
    if outcome.result is not None:
        return Finish.DONE, None, outcome.result.bytes_fetched
    return Finish.FAILED, outcome.error.code if outcome.error else None, 0


def _named_if_present(
    spec: JobSpec, options: BatchOptions, present: frozenset[str] | None
) -> JobSpec:
    """When the file the URL names is already in the output directory and is this URL's (hauler
    marked it so, maybe under a collision's numbered name), name the job after it, so that the
    engine skips it without sending a single request; with ``skip`` (wget ``-nc``) any file
    there, with ``continue`` (wget ``-c``) any file there to resume from, is named so too.

    ``present`` (the directory's names when the batch started, None if unknown) spares a
    ``stat`` per file; a file that appears later is still skipped, by the engine, after its probe.
    """
    policy = options.on_existing
    if spec.output is not None or policy is OnExisting.OVERWRITE:
        return spec
    name = name_from_response(spec.url, None)
    if present is not None and name not in present:
        return spec
    path = options.output_dir / name
    if policy in (OnExisting.SKIP, OnExisting.CONTINUE):
        return spec.model_copy(update={"output": name}) if path.is_file() else spec
    from hauler.transfer.existing import find_complete

    found = find_complete(path, spec.url)
    return spec.model_copy(update={"output": found.name}) if found is not None else spec


def _names_in(directory: Path) -> frozenset[str] | None:
    """The names in ``directory`` now; None when it cannot be listed."""
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return None


def _cancel_on_sigterm() -> None:
    """Make SIGTERM cancel the running main task, so the engine flushes its control files."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
