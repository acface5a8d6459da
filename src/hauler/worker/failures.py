"""Turning an exception from a job into what the store records: error, and retry time or none."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hauler.errors import ConnectionRefused, DiskFull, ErrorClass, HaulerError, NoResource
from hauler.models import Job, JobError
from hauler.policy.retry import Action, RetryPolicy
from hauler.worker.diskroom import unwritable_reason

logger = logging.getLogger(__name__)

# A job that met a full disk (or an unwritable directory) waits at least this long before it is
# tried again.
DISK_FULL_RETRY_S = 60.0
# A refused connection is checked once more, one backoff later (a server restarting), and then
# fails: nothing listens there, and `get`, curl, wget and aria2c give up at once.
REFUSED_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """What to pass to ``store.fail``."""

    error: JobError
    retry_at: float | None
    # False for a job that only waited (no proxy or account usable): its attempt is given back.
    is_counted: bool = True


def is_local_stop(error: BaseException) -> bool:
    """True for the failures that are the worker's disk's, not the job's: full, or unwritable
    (permission denied, read-only). The worker stops claiming; the job comes back later."""
    return isinstance(error, DiskFull) or unwritable_reason(error) is not None


def classify(error: BaseException, job: Job, policy: RetryPolicy, now: float) -> FailureRecord:
    """Decide retry or failure for ``job`` after ``error`` at time ``now``.

    ``job.attempts`` already counts this attempt (claims count attempts). Unknown exceptions
    are logged with their traceback and retried: losing a job is worse than a retry.
    """
    if isinstance(error, HaulerError):
        error_class = str(error.error_class)
        message = error.message
    else:
        logger.error("unexpected error in job %s", job.id, exc_info=error)
        error_class = str(ErrorClass.TRANSIENT)
        message = f"{type(error).__name__}: {error}"
    record = JobError(error_class, message, now)
    if is_local_stop(error) and job.attempts < job.max_attempts:
        # Not the job's fault: it comes back later (here, once there is room, or elsewhere),
        # and a file that never fits still fails after max_attempts.
        delay_s = max(policy.backoff_s(job.attempts), DISK_FULL_RETRY_S)
        return FailureRecord(record, now + delay_s)
    if isinstance(error, NoResource):
        # Not a failure: the job waits until the first resource comes back, however long.
        return FailureRecord(record, now + max(1.0, error.retry_after_s or 1.0), is_counted=False)
    if isinstance(error, ConnectionRefused) and job.attempts >= REFUSED_ATTEMPTS:
        return FailureRecord(record, None)
    decision = policy.decide(error, job.attempts, job.max_attempts)
    retry_at = now + decision.delay_s if decision.action is Action.RETRY else None
    return FailureRecord(record, retry_at)
