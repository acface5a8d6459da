"""The worker: lanes running one job each through the pipeline, the claim loop, the heartbeat,
pause/stop flags and the graceful shutdown that hands unfinished jobs back to the queue."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hauler.clock import Clock, SystemClock
from hauler.config import WorkerSettings
from hauler.errors import DiskFull, Interrupted, LeaseLost, StoreUnavailable
from hauler.logcontext import host_var, job_id_var
from hauler.models import Job, JobKind, JobState, WorkerInfo
from hauler.observe import Finish, NullObserver, Observer
from hauler.pipeline.handler import Continuation
from hauler.pipeline.outcome import result_record
from hauler.pipeline.run import Pipeline
from hauler.policy.retry import RetryPolicy
from hauler.redact import Redactor
from hauler.store.base import Completion, Store
from hauler.worker.completions import CompletionBatcher
from hauler.worker.diskroom import DiskRoom, unwritable_reason
from hauler.worker.failures import classify
from hauler.worker.flags import Flags, read_flags
from hauler.worker.lease import LeaseKeeper
from hauler.worker.meter import ByteMeter, LaneProgress
from hauler.worker.modes import Mode

logger = logging.getLogger(__name__)
T = TypeVar("T")
_STORE_TRIES = 6
# A change `hauler status` shows (pause taken, job started or finished) is published at once,
# then at most this often: a burst of small jobs is one write a second, not one a job.
PUBLISH_MIN_S = 1.0
_PENDING_STATES = (JobState.QUEUED, JobState.RETRYING, JobState.RUNNING)
# How long a recording whose lease was lost may take to land its open part before it is cut.
LOST_RECORDING_GRACE_S = 15.0


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this worker is in the fleet."""

    name: str
    node: str
    pid: int

    @classmethod
    def of(cls, settings: WorkerSettings) -> Identity:
        """The configured name/node, defaulting to the host name and ``{node}-{pid}``."""
        node = settings.node or socket.gethostname()
        pid = os.getpid()
        return cls(settings.name or f"{node}-{pid}", node, pid)


@dataclass(slots=True)
class Summary:
    """What a worker did, reported at exit."""

    done: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    lost: int = 0
    bytes_total: int = 0
    stopped_by: str = ""
    # How many jobs failed for good, by failure class (the exit status comes from these).
    failed_classes: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _Held:
    """A claimed job and the lane task running it."""

    job: Job
    task: asyncio.Task[None] | None = None
    # settling: the transfer is over and its outcome is being recorded; never cancel it then.
    is_settling: bool = False
    is_lost: bool = False
    # What the observer is told when the lane ends (set where the outcome is known).
    finish: Finish | None = None
    error_class: str | None = None
    progress: LaneProgress | None = None
    # A recording holds a live slot (beside the download lanes) unless they were all taken.
    is_live_slot: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _PollState:
    """The claim loop's memory between rounds."""

    idle_rounds: int = 0
    flags: Flags = field(default_factory=lambda: Flags(False, False))
    flags_read_mono: float | None = None


class Worker:
    """One worker process: up to ``settings.concurrency`` jobs at a time, each in its own lane.

    ``run`` returns when the mode says so or after ``request_stop`` (signals, `hauler stop`),
    having released the jobs it could not finish within ``settings.grace_s``. The ``observer``
    hears each job's start and end as the store recorded it; the bytes and the handling are the
    ``pipeline``'s to report (build it with the same observer).
    """

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        settings: WorkerSettings,
        *,
        mode: Mode | None = None,
        identity: Identity | None = None,
        clock: Clock | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.identity = identity or Identity.of(settings)
        self.summary = Summary()
        self._store = store
        self._pipeline = pipeline
        self._settings = settings
        self._mode = mode or Mode(settings.mode)
        self._clock = clock or SystemClock()
        self._observer = observer or NullObserver()
        self._policy = RetryPolicy(base_s=settings.retry_base_s, cap_s=settings.retry_cap_s)
        self._keeper = LeaseKeeper(store, settings.lease_s, self._on_lost)
        self._batcher = CompletionBatcher(store, clock=self._clock)
        self._meter = ByteMeter(self._clock.monotonic())
        # Renew well inside the lease: two missed beats still leave the lease alive.
        self._beat_s = min(settings.heartbeat_s, settings.lease_s / 4)
        self._held: dict[str, _Held] = {}
        self._stopped_lanes = 0  # on_bannable = stop_lane: lanes that will claim nothing more
        self._timers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()  # something `hauler status` shows changed
        self._stopping = asyncio.Event()
        self._forced = asyncio.Event()
        self._closing = asyncio.Event()
        self._poll = _PollState()
        self._started_at = 0.0
        self._stop_seen_at_start: float | None = None
        self._room = DiskRoom(
            pipeline.output_dir, settings.min_free_bytes, settings.disk_check_s, self._clock
        )

    def request_stop(self, reason: str = "signal") -> None:
        """First call: stop claiming and finish within the grace period. Second: stop now."""
        if self._stopping.is_set():
            logger.warning("stopping now: cancelling %d running jobs", len(self._held))
            self._forced.set()
        else:
            logger.info(
                "stopping (%s): finishing running jobs, %.0fs grace", reason, self._settings.grace_s
            )
            self.summary.stopped_by = reason
        self._stopping.set()
        for held in self._held.values():
            held.stop.set()  # a recording closes its part now and is given back
        self._wake.set()

    async def run(self) -> Summary:
        """Work until the mode or a stop says to exit; return what was done."""
        self._started_at = self._clock.now()
        self._stop_seen_at_start = await self._store.stop_requested_at()
        await self._store.beat_worker(self._info(), self._beat_ttl_s())
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        publisher = asyncio.create_task(self._publish_loop(), name="publish-worker")
        completions = asyncio.create_task(self._batcher.run(), name="completions")
        try:
            await self._claim_loop()
            await self._shutdown()
        finally:
            await self._cancel_lanes()
            await self._end_heartbeat(heartbeat, publisher)
            completions.cancel()
            await asyncio.wait([completions])
            await self._final_flush()
            await self._leave()
        self.summary.bytes_total = self._meter.bytes_total
        return self.summary

    # -- claim loop --------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self._round():
                    return
            except StoreUnavailable as exc:
                logger.warning("store unavailable, retrying: %s", exc)
                self._poll.idle_rounds += 1
            await self._sleep(self._delay_s())

    async def _round(self) -> bool:
        """Read flags, claim into free lanes. True when it is time to exit."""
        flags = await self._read_flags()
        if flags.is_stop_requested:
            self.request_stop("stop requested")
            return True
        claimed, asked = 0, 0
        was_blocked = self._room.is_blocked
        if not flags.is_paused and self._free_lanes() > 0 and self._room.has_room():
            if was_blocked:
                self._changed.set()
            claimed, asked = await self._claim()
            if self._mode is Mode.ONCE:
                await self._wait_lanes_idle()
                return True
        self._poll.idle_rounds = 0 if asked and claimed >= asked else self._poll.idle_rounds + 1
        return self._mode is Mode.DRAIN and not claimed and await self._is_drained()

    async def _claim(self) -> tuple[int, int]:
        asked = min(self._free_lanes(), self._settings.claim_batch)
        jobs = await self._store.claim(
            self.identity.name,
            self.identity.node,
            asked,
            self._settings.lease_s,
            self._settings.affinity_s,
        )
        for job in jobs:
            self._start(job)
        return len(jobs), asked

    async def _is_drained(self) -> bool:
        if self._held:
            return False
        counts = await self._store.counts()
        return all(counts.get(state, 0) == 0 for state in _PENDING_STATES)

    async def _read_flags(self) -> Flags:
        now_mono = self._clock.monotonic()
        last = self._poll.flags_read_mono
        if last is None or now_mono - last >= self._settings.poll_s:
            flags = await read_flags(
                self._store, self.identity.name, self._pipeline.output_dir, self._stop_seen_at_start
            )
            if flags.is_paused != self._poll.flags.is_paused:
                logger.info("worker %s", "paused: no new jobs" if flags.is_paused else "resumed")
                self._changed.set()
            self._poll.flags, self._poll.flags_read_mono = flags, now_mono
        return self._poll.flags

    def _free_lanes(self) -> int:
        """Download lanes free (recordings in live slots take none; stopped lanes are gone)."""
        in_lanes = sum(1 for held in self._held.values() if not held.is_live_slot)
        return self._settings.concurrency - self._stopped_lanes - in_lanes

    def _stop_lane(self, exc: Exception) -> None:
        """``on_bannable = stop_lane``: one lane fewer from now on; none left, the worker
        stops (its resources are burnt: an operator looks before it runs again)."""
        self._stopped_lanes += 1
        left = self._settings.concurrency - self._stopped_lanes
        logger.warning("a lane stopped (on_bannable = stop_lane, %d left): %s", left, exc)
        if left <= 0:
            self.request_stop("every lane stopped on a bannable failure")

    def _takes_live_slot(self, job: Job) -> bool:
        if job.spec.kind is not JobKind.LIVE:
            return False
        in_slots = sum(1 for held in self._held.values() if held.is_live_slot)
        return in_slots < self._settings.live_concurrency

    def _delay_s(self) -> float:
        if self._free_lanes() <= 0:
            return self._settings.poll_s  # a finishing lane wakes the loop sooner
        return min(self._settings.poll_s, 0.01 * 2.0 ** min(self._poll.idle_rounds, 20))

    async def _sleep(self, delay_s: float) -> None:
        await self._clock.wait_for(self._wake, delay_s)
        self._wake.clear()

    async def _wait_lanes_idle(self) -> None:
        while self._held and not self._stopping.is_set():
            await self._sleep(self._settings.poll_s)

    # -- lanes -------------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        previous = self._held.get(job.id)
        if previous is not None and previous.task is not None:
            # Our own older lease expired and we claimed the job again: the old lane must go.
            previous.is_lost = True
            previous.task.cancel()
        held = _Held(job, is_live_slot=self._takes_live_slot(job))
        if self._stopping.is_set():
            held.stop.set()
        self._held[job.id] = held
        self._keeper.hold(job.id, job.token)
        held.task = asyncio.create_task(self._lane(held, previous), name=f"job-{job.id}")
        held.task.add_done_callback(lambda task: self._lane_done(held, task))
        self._changed.set()

    async def _lane(self, held: _Held, previous: _Held | None) -> None:
        if previous is not None and previous.task is not None:
            await asyncio.wait([previous.task])  # never two lanes on one partial file
        job = held.job
        # Each lane is its own task (its own context): the binding lasts for the whole job,
        # outcome log lines included.
        job_id_var.set(job.id)
        host_var.set(job.spec.host)
        held.progress = self._meter.sink()
        self._observer.job_started(job.id, Redactor.for_specs([job.spec]).url(job.spec.url))
        try:
            outcome = await self._pipeline.run(
                job.spec, held.progress, job.id, self._continuation(held)
            )
        except asyncio.CancelledError:
            raise
        except Interrupted as exc:
            held.is_settling = True
            logger.info("job %s stopped: %s", job.id, exc.message)
            await self._release(job)
            held.finish = Finish.RELEASED
            return
        except Exception as exc:
            held.is_settling = True
            await self._record_failure(held, exc)
            if self._pipeline.stops_lane_after(exc):
                self._stop_lane(exc)
            return
        held.is_settling = True
        if outcome.spawned:
            # Queued before the parent completes: a crash between the two re-runs the parent,
            # and the store's dedupe keeps its entries from being queued twice.
            added = await self._with_store_retry(lambda: self._store.add(outcome.spawned))
            logger.info("job %s: %d entries queued (%d known)", job.id, added.added, added.skipped)
        completion = Completion(job.id, job.token, result_record(outcome))
        if await self._batcher.complete(completion):
            held.finish = Finish.DONE
            self.summary.done += 1
            what = outcome.primary.path.name if outcome.primary else "playlist"
            logger.info("job %s done: %s (%d bytes)", job.id, what, outcome.size)
        else:
            held.finish = Finish.LOST
            self.summary.lost += 1
            logger.warning("job %s: lease lost before completion; another worker owns it", job.id)

    def _continuation(self, held: _Held) -> Continuation:
        """What the job carries across workers: the result it saved last time, a way to save
        more (under this claim's token), and this worker's stop request."""
        job = held.job

        async def save(result: dict[str, object]) -> None:
            await self._with_store_retry(lambda: self._store.save_result(job.id, job.token, result))

        return Continuation(previous=job.result, save=save, stop=held.stop)

    async def _record_failure(self, held: _Held, exc: Exception) -> None:
        job = held.job
        if isinstance(exc, DiskFull):
            self._room.mark_full()
            self._changed.set()
        elif (reason := unwritable_reason(exc)) is not None:
            self._room.mark_unwritable(reason)
            self._changed.set()
        record = classify(exc, job, self._policy, self._clock.now())
        held.error_class = record.error.error_class
        try:
            state = await self._with_store_retry(
                lambda: self._store.fail(
                    job.id, job.token, record.error, record.retry_at, is_counted=record.is_counted
                )
            )
        except LeaseLost:
            held.finish = Finish.LOST
            if not held.is_lost:  # else counted when the heartbeat found it lost
                self.summary.lost += 1
            logger.warning("job %s: lease lost before recording: %s", job.id, record.error.message)
            return
        if state is JobState.FAILED:
            held.finish = Finish.FAILED
            self.summary.failed += 1
            error = record.error
            classes = self.summary.failed_classes
            classes[error.error_class] = classes.get(error.error_class, 0) + 1
            logger.info("job %s failed (%s): %s", job.id, error.error_class, error.message)
        else:
            held.finish = Finish.RETRYING
            self.summary.retried += 1
            delay = (record.retry_at or 0.0) - record.error.at
            error = record.error
            self._observer.retried(job.id, error.error_class, delay)
            logger.info(
                "job %s: retry in %.1fs (%s): %s", job.id, delay, error.error_class, error.message
            )

    def _lane_done(self, held: _Held, task: asyncio.Task[None]) -> None:
        if self._held.get(held.job.id) is held:
            del self._held[held.job.id]
        self._keeper.drop(held.job.id, held.job.token)
        crashed = not task.cancelled() and (exc := task.exception()) is not None
        if crashed:
            logger.error("lane for job %s crashed", held.job.id, exc_info=exc)
        self._report_finish(held, crashed)
        self._changed.set()
        self._wake.set()

    def _report_finish(self, held: _Held, crashed: bool) -> None:
        finish = held.finish
        if finish is None:
            # Lost (lease gone), crashed, or cancelled at shutdown (then released).
            finish = Finish.LOST if held.is_lost else Finish.CRASHED if crashed else Finish.RELEASED
        nbytes = held.progress.bytes_done if held.progress is not None else 0
        self._observer.job_finished(held.job.id, finish, held.error_class, nbytes)

    def _on_lost(self, job_id: str) -> None:
        held = self._held.get(job_id)
        if held is None or held.is_lost:
            return
        held.is_lost = True
        if held.is_settling or held.task is None:
            return
        self.summary.lost += 1
        if held.job.spec.kind is JobKind.LIVE:
            # A recording (cleared, or taken over) lands its open part first: it is the
            # stream's, whoever goes on with the job. Cancelled if that does not end it.
            logger.warning("lease on job %s lost: closing its recording", job_id)
            held.stop.set()
            self._later(LOST_RECORDING_GRACE_S, held.task.cancel)
        else:
            logger.warning("lease on job %s lost: cancelling its transfer", job_id)
            held.task.cancel()

    def _later(self, delay_s: float, action: Callable[[], object]) -> None:
        """Run ``action`` after ``delay_s`` on the worker's clock (a task of its own)."""

        async def wait_then_act() -> None:
            await self._clock.sleep(delay_s)
            action()

        task = asyncio.create_task(wait_then_act())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    # -- heartbeat ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while not await self._clock.wait_for(self._closing, self._beat_s):
            try:
                await self._keeper.renew()
                await self._store.beat_worker(self._info(), self._beat_ttl_s())
            except StoreUnavailable as exc:
                logger.warning("heartbeat failed: %s", exc)
            except Exception:
                # A heartbeat that dies silently would let every lease expire: keep beating.
                logger.exception("heartbeat failed")

    async def _publish_loop(self) -> None:
        """Write the worker record soon after a change ``hauler status`` shows (pause, jobs
        started or finished), at most every ``PUBLISH_MIN_S``; the heartbeat covers the rest."""
        while await self._changed_unless_closing():
            self._changed.clear()
            try:
                await self._store.beat_worker(self._info(), self._beat_ttl_s())
            except StoreUnavailable as exc:
                logger.warning("could not publish the worker record: %s", exc)
            except Exception:
                logger.exception("could not publish the worker record")
            if await self._closing_within(PUBLISH_MIN_S):
                return

    async def _changed_unless_closing(self) -> bool:
        """Wait for a change or for closing; True for a change (and not closing)."""
        waits = [asyncio.create_task(e.wait()) for e in (self._changed, self._closing)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return not self._closing.is_set()

    async def _closing_within(self, delay_s: float) -> bool:
        """True when closing begins within ``delay_s``."""
        return await self._clock.wait_for(self._closing, delay_s)

    def _beat_ttl_s(self) -> float:
        return 3 * self._beat_s + 1.0

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            name=self.identity.name,
            node=self.identity.node,
            pid=self.identity.pid,
            started_at=self._started_at,
            seen_at=self._clock.now(),
            concurrency=self._settings.concurrency,
            is_paused=self._poll.flags.is_paused or self._room.is_blocked,
            bytes_per_s=self._meter.sample(self._clock.monotonic()),
            bytes_total=self._meter.bytes_total,
            current_jobs=tuple(self._held),
            recording=sum(1 for p in self._progress() if p.is_recording),
            watching=sum(1 for p in self._progress() if p.is_watching),
        )

    def _progress(self) -> list[LaneProgress]:
        return [held.progress for held in self._held.values() if held.progress is not None]

    # -- shutdown ----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Let lanes finish within the grace period, then cancel and release the rest."""
        lanes = [h.task for h in self._held.values() if h.task is not None]
        await self._grace(lanes)
        to_release = [h for h in self._held.values() if not h.is_settling and not h.is_lost]
        for held in to_release:
            if held.task is not None:
                held.task.cancel()
        # Settling lanes are not cancelled: their outcome is being recorded right now.
        remaining = [h.task for h in self._held.values() if h.task is not None]
        if remaining:
            await asyncio.wait(remaining)
        for held in to_release:
            await self._release(held.job)

    async def _grace(self, lanes: list[asyncio.Task[None]]) -> None:
        """Wait on the clock until ``lanes`` are done, a second stop, or ``grace_s`` has passed.

        Every lane's end and every stop request set ``_wake``: each is a moment to look again.
        """
        deadline = self._clock.monotonic() + self._settings.grace_s
        while not self._forced.is_set() and not all(lane.done() for lane in lanes):
            left_s = deadline - self._clock.monotonic()
            if left_s <= 0:
                return
            await self._clock.wait_for(self._wake, left_s)
            self._wake.clear()

    async def _release(self, job: Job) -> None:
        try:
            await self._with_store_retry(lambda: self._store.release(job.id, job.token))
            self.summary.released += 1
            logger.info("released job %s back to the queue", job.id)
        except LeaseLost:
            logger.info("job %s was taken over before it could be released", job.id)
        except StoreUnavailable as exc:
            logger.warning("could not release job %s (its lease will expire): %s", job.id, exc)

    async def _cancel_lanes(self) -> None:
        """Cancel lanes still running (only when ``run`` itself was cancelled or crashed)."""
        lanes = [h.task for h in self._held.values() if h.task is not None]
        for task in [*lanes, *self._timers]:
            task.cancel()
        if lanes:
            await asyncio.wait(lanes)

    async def _end_heartbeat(self, *beats: asyncio.Task[None]) -> None:
        """Stop the heartbeat (and the publisher) between beats: a beat cut in half could land
        after ``remove_worker`` and bring the worker's record back from the dead."""
        self._closing.set()
        await self._clock.wait_for(_all_done(beats), self._settings.lease_s)
        for beat in beats:
            beat.cancel()
        await asyncio.wait(beats)

    async def _final_flush(self) -> None:
        try:
            await self._with_store_retry(self._batcher.flush)
        except StoreUnavailable as exc:
            logger.warning("could not record completions at exit: %s", exc)
            self._batcher.abandon()

    async def _leave(self) -> None:
        try:
            await self._store.remove_worker(self.identity.name)
        except StoreUnavailable as exc:
            logger.warning("could not remove the worker record: %s", exc)

    async def _with_store_retry(self, op: Callable[[], Awaitable[T]]) -> T:
        """``op()``, retried with backoff while the store is unavailable (a restart, a blip)."""
        for attempt in range(_STORE_TRIES):
            try:
                return await op()
            except StoreUnavailable as exc:
                if attempt == _STORE_TRIES - 1:
                    raise
                logger.warning("store unavailable, retrying: %s", exc)
                await self._clock.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")


def _all_done(tasks: tuple[asyncio.Task[None], ...]) -> asyncio.Event:
    """An event set once every one of ``tasks`` is done (to wait for on a ``Clock``)."""
    done = asyncio.Event()
    pending = {task for task in tasks if not task.done()}

    def on_done(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        if not pending:
            done.set()

    if not pending:
        done.set()
    for task in pending:
        task.add_done_callback(on_done)
    return done
