"""Why a job is where it is: the reasons ``hauler explain`` prints, derived from store state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hauler.models import Job, JobState, WorkerInfo
from hauler.redact import Redactor, printable, redact_url


@dataclass(frozen=True, slots=True)
class FleetView:
    """What the store says about the fleet at one moment."""

    now: float
    is_fleet_paused: bool
    paused_workers: tuple[str, ...]
    workers: tuple[WorkerInfo, ...]
    affinity_s: float


def at(epoch_s: float, now: float) -> str:
    """``2026-11-22 23:10:00Z (in 42s)``: an absolute UTC time and how far from now."""
    stamp = datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    delta = epoch_s - now
    relative = f"in {delta:.0f}s" if delta >= 0 else f"{-delta:.0f}s ago"
    return f"{stamp} ({relative})"


def explain(job: Job, fleet: FleetView) -> list[str]:
    """Reasons, most important first, why ``job`` is in its state and what it waits for.

    Safe to print: the job's secrets are masked and text from a server (error messages, names)
    has its control characters escaped.
    """
    redact = Redactor.for_specs([job.spec])
    return [printable(redact.text(line)) for line in _reasons(job, fleet)]


def _reasons(job: Job, fleet: FleetView) -> list[str]:
    url = redact_url(job.spec.url)
    head = f"{job.state}: attempt {job.attempts} of {job.max_attempts}, {url}"
    if job.state is JobState.DONE:
        return [head, *_done(job)]
    if job.state is JobState.FAILED:
        return [head, *_failed(job)]
    if job.state is JobState.RUNNING:
        return [head, *_running(job, fleet)]
    return [head, *_waiting(job, fleet), *_fleet_blockers(fleet)]


def _done(job: Job) -> list[str]:
    result = job.result or {}
    return [f"done: {result.get('path', '?')} ({result.get('size', '?')} bytes)"]


def _failed(job: Job) -> list[str]:
    if job.error is None:
        return ["failed (no error recorded)"]
    return [
        f"failed with {job.error.error_class}: {job.error.message}",
        "run `hauler requeue` (with --reason or --host to narrow it) to try again",
    ]


def _running(job: Job, fleet: FleetView) -> list[str]:
    lease = job.lease_until or 0.0
    lines = [f"running on worker {job.worker} (node {job.node})"]
    lines.append(f"lease until {at(lease, fleet.now)}")
    if lease <= fleet.now:
        lines.append("the lease has expired: the next claim by any worker requeues it")
    if job.worker not in {w.name for w in fleet.workers}:
        lines.append(f"worker {job.worker} is not alive: the job returns when its lease expires")
    return lines


def _waiting(job: Job, fleet: FleetView) -> list[str]:
    lines: list[str] = []
    if job.state is JobState.RETRYING and job.ready_at > fleet.now:
        lines.append(f"not due until {at(job.ready_at, fleet.now)} (retry backoff)")
    if job.error is not None:
        lines.append(f"last error: {job.error.error_class}: {job.error.message}")
    reserved_until = job.ready_at + fleet.affinity_s
    if job.node and reserved_until > fleet.now:
        lines.append(
            f"reserved for node {job.node} until {at(reserved_until, fleet.now)} "
            "(affinity: that node holds its partial file)"
        )
    if not lines:
        lines.append("queued: waiting for a free lane")
    return lines


def _fleet_blockers(fleet: FleetView) -> list[str]:
    lines: list[str] = []
    if fleet.is_fleet_paused:
        lines.append("the fleet is paused: `hauler resume` to continue")
    live = [w for w in fleet.workers if not w.is_paused and w.name not in fleet.paused_workers]
    if not fleet.workers:
        lines.append("no live worker: start one with `hauler worker`")
    elif not live:
        lines.append("every live worker is paused")
    return lines
