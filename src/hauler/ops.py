"""The queue operations the CLI composes and the HTTP API will call: each takes a store (and the
settings it needs) and returns plain records (dataclasses of models, ``hauler.views``); printing
them, as tables or JSON (``hauler.views``' records), is the caller's part."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from hauler.clock import yield_now
from hauler.errors import ErrorClass
from hauler.hosts import HostBudget
from hauler.hostviews import host_reasons
from hauler.intake import BadLine, read_batches
from hauler.models import Job, JobKind, JobSpec, JobState
from hauler.store import AddResult, FleetControl, JobFilter, JobStore, WorkerRegistry
from hauler.store.base import HostBudgets
from hauler.units import parse_duration
from hauler.views import Explanation, FleetStatus
from hauler.worker.explain import FleetView, explain

# At most this many bad lines are kept in an add's tally (all are counted).
MAX_BAD_KEPT = 1000
FAILURE_CLASSES = ", ".join(ErrorClass)


@dataclasses.dataclass(slots=True)
class AddTally:
    """What an add did over its whole input."""

    added: int = 0
    skipped: int = 0
    bad: int = 0
    bad_lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class FleetRoles(JobStore, FleetControl, WorkerRegistry, HostBudgets, Protocol):
    """The roles a fleet-wide view reads: the jobs, the pause/stop flags, the workers, the
    host budgets. (Not ``Store``: closing the store is its opener's business, never an
    operation's.)"""


def _ignore_bad(bad: BadLine) -> None:
    del bad


async def add_lines(
    store: JobStore,
    lines: Iterable[str],
    defaults: dict[str, Any],
    on_bad: Callable[[BadLine], None] = _ignore_bad,
) -> AddTally:
    """Queue the URLs (or JSON lines) of ``lines`` with ``defaults``, in batches; the store writes
    one batch while the next is parsed. Duplicates are skipped; each bad line goes to ``on_bad``
    (the first ``MAX_BAD_KEPT`` of them are kept in the tally)."""
    tally = AddTally()
    pending: asyncio.Task[AddResult] | None = None
    try:
        for batch in read_batches(lines, defaults):
            _note_bad(tally, batch.bad, on_bad)
            if pending is not None:
                _note_added(tally, await pending)
                pending = None
            if batch.specs:
                pending = asyncio.create_task(store.add(keyed_by_video(batch.specs)))
                await yield_now()
        if pending is not None:
            _note_added(tally, await pending)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
    return tally


def keyed_by_video(specs: list[JobSpec]) -> list[JobSpec]:
    """``specs`` with each ``media`` job that has no key of its own keyed by its video
    (``Extractor:id``, when a site extractor's URL pattern gives the id): two URLs of one video
    are then one job. Only explicit media jobs: asking every extractor costs ~3 ms a URL, too
    much for ten million plain files."""
    if not any(spec.kind is JobKind.MEDIA and spec.key is None for spec in specs):
        return specs
    try:
        from hauler.media.claims import video_key
    except ImportError:  # no yt-dlp here: the URL stays the key
        return specs
    keyed = []
    for spec in specs:
        key = video_key(spec.url) if spec.kind is JobKind.MEDIA and spec.key is None else None
        keyed.append(spec.model_copy(update={"key": key}) if key else spec)
    return keyed


def _note_added(tally: AddTally, result: AddResult) -> None:
    tally.added += result.added
    tally.skipped += result.skipped


def _note_bad(tally: AddTally, bad_lines: list[BadLine], on_bad: Callable[[BadLine], None]) -> None:
    for bad in bad_lines:
        tally.bad += 1
        if len(tally.bad_lines) < MAX_BAD_KEPT:
            tally.bad_lines.append(dataclasses.asdict(bad))
            on_bad(bad)


async def status(store: FleetRoles) -> FleetStatus:
    """What ``hauler status`` shows."""
    counts = await store.counts()
    workers = await store.workers()
    is_fleet_paused, paused_workers = await store.paused_workers()
    stop_at = await store.stop_requested_at()
    return FleetStatus(counts, workers, is_fleet_paused, tuple(paused_workers), stop_at)


async def explain_job(store: FleetRoles, job_id: str, affinity_s: float) -> Explanation | None:
    """Why job ``job_id`` waits (or failed, or where it runs); None if there is no such job.
    ``affinity_s``: the workers' setting (how long a host sticks to its worker)."""
    job = await store.get(job_id)
    if job is None:
        return None
    is_fleet_paused, paused_workers = await store.paused_workers()
    fleet = FleetView(
        now=time.time(),
        is_fleet_paused=is_fleet_paused,
        paused_workers=tuple(paused_workers),
        workers=tuple(await store.workers()),
        affinity_s=affinity_s,
    )
    budgets = await _budgets_if_held_back(store, job)
    reasons = [*explain(job, fleet), *host_reasons(job, budgets, fleet.now)]
    return Explanation(job, tuple(reasons))


async def _budgets_if_held_back(store: HostBudgets, job: Job) -> list[HostBudget]:
    """The store's host budgets, which a job done is no longer held back by (not read)."""
    return [] if job.state is JobState.DONE else await store.host_budgets()


class BadFilter(ValueError):
    """A requeue/clear filter option the user must fix; ``flag`` names it."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(message)
        self.flag = flag
        self.message = message


def job_filter(
    state: JobState | None = None,
    reason: str | None = None,
    host: str | None = None,
    since: str | None = None,
) -> JobFilter:
    """The filter of a requeue or clear: ``since`` a duration (``2h``: updated within), ``reason``
    a failure class, ``host`` matched case-insensitively. Raises ``BadFilter``."""
    try:
        since_at = None if since is None else time.time() - parse_duration(since)
    except ValueError as exc:
        raise BadFilter("--since", str(exc)) from None
    if reason is not None and reason not in {c.value for c in ErrorClass}:
        message = f"--reason {reason!r} is not a failure class; accepted: {FAILURE_CLASSES}"
        raise BadFilter("--reason", message)
    return JobFilter(state=state, reason=reason, host=host and host.lower(), since=since_at)


def selects_every_job(flt: JobFilter) -> bool:
    """True if ``flt`` narrows nothing (a clear with it deletes every job)."""
    return flt == JobFilter()


async def list_jobs(store: JobStore, state: JobState | None, limit: int) -> list[Job]:
    """Jobs (in ``state``, if given), most recently updated first, at most ``limit``."""
    return await store.list_jobs(JobFilter(state=state, limit=limit))


async def requeue(store: JobStore, flt: JobFilter) -> int:
    """Put the jobs ``flt`` selects back in the queue, attempts reset; how many moved."""
    return await store.requeue(flt)


async def clear(store: JobStore, flt: JobFilter) -> int:
    """Delete the jobs ``flt`` selects (and forget their dedupe keys); how many."""
    return await store.clear(flt)


async def set_paused(store: FleetControl, paused: bool, worker: str | None = None) -> None:
    """Pause (or resume) the whole fleet, or only ``worker``."""
    await store.set_paused(paused, worker)


async def request_stop(store: FleetControl) -> float:
    """Ask every running worker to exit gracefully; when the stop was requested."""
    return await store.request_stop()
