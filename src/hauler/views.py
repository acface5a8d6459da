"""The reports of ``hauler.ops`` and their JSON records: what ``--json`` prints and what the
HTTP API will answer. The store keeps a job's secrets (URL passwords, Authorization/Cookie/API-key
headers: the worker needs them); every record here shows them masked (``hauler.redact``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hauler.models import Job, JobState, WorkerInfo
from hauler.redact import Redactor, masked_headers


@dataclasses.dataclass(frozen=True, slots=True)
class FleetStatus:
    """Jobs per state, the live workers, the pause flags and the last stop request."""

    counts: dict[JobState, int]
    workers: list[WorkerInfo]
    is_fleet_paused: bool
    paused_workers: tuple[str, ...]
    stop_requested_at: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    """A job and the reasons, most important first, why it is in its state."""

    job: Job
    reasons: tuple[str, ...]


def job_record(job: Job) -> dict[str, Any]:
    """A job as a JSON object, its secrets masked."""
    redact = Redactor.for_specs([job.spec])
    error = None
    if job.error is not None:
        message = redact.text(job.error.message)
        error = {"class": job.error.error_class, "message": message, "at": job.error.at}
    return {
        "id": job.id,
        "url": redact.url(job.spec.url),
        "state": str(job.state),
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "ready_at": job.ready_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "lease_until": job.lease_until,
        "worker": job.worker,
        "node": job.node,
        "error": error,
        "result": _masked(job.result, redact),
        "spec": _masked_spec(job, redact),
    }


def _masked_spec(job: Job, redact: Redactor) -> dict[str, Any]:
    spec = job.spec.model_dump(mode="json", exclude_defaults=True)
    spec["url"] = redact.url(job.spec.url)
    if "headers" in spec:
        spec["headers"] = masked_headers(job.spec.headers)
    return spec


def _masked(value: Any, redact: Redactor) -> Any:
    """``value`` (a job's result: JSON data) with every string's URL passwords and secrets
    masked."""
    if isinstance(value, str):
        return redact.url(value) if "://" in value else redact.text(value)
    if isinstance(value, dict):
        return {k: _masked(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, redact) for v in value]
    return value


def worker_record(info: WorkerInfo) -> dict[str, Any]:
    """A worker heartbeat as a JSON object."""
    return {
        "name": info.name,
        "node": info.node,
        "pid": info.pid,
        "started_at": info.started_at,
        "seen_at": info.seen_at,
        "concurrency": info.concurrency,
        "is_paused": info.is_paused,
        "bytes_per_s": info.bytes_per_s,
        "bytes_total": info.bytes_total,
        "current_jobs": list(info.current_jobs),
        "recording": info.recording,
        "watching": info.watching,
    }


def status_record(status: FleetStatus) -> dict[str, Any]:
    """``hauler status --json``: jobs per state, live workers, pause and stop flags."""
    return {
        "jobs": {str(state): status.counts.get(state, 0) for state in JobState},
        "workers": [worker_record(w) for w in status.workers],
        "live": {
            "recording": sum(w.recording for w in status.workers),
            "watching": sum(w.watching for w in status.workers),
        },
        "paused": {"fleet": status.is_fleet_paused, "workers": list(status.paused_workers)},
        "stop_requested_at": status.stop_requested_at,
    }


def explanation_record(explanation: Explanation) -> dict[str, Any]:
    """``hauler explain --json``: the job and the reasons it waits (or failed, or where it runs)."""
    return {"job": job_record(explanation.job), "reasons": list(explanation.reasons)}
