"""Classifying a job's exception into the store's failure record."""

from __future__ import annotations

import errno

import pytest

from hauler.errors import ConnectionRefused, LocalError, NotFound, Throttled
from hauler.models import Job, JobSpec, JobState
from hauler.policy.retry import RetryPolicy
from hauler.worker.failures import DISK_FULL_RETRY_S, classify

NOW = 1_700_000_000.0
POLICY = RetryPolicy(base_s=10.0, cap_s=100.0, jitter=False)


def _job(attempts: int, max_attempts: int = 5) -> Job:
    spec = JobSpec(url="http://127.0.0.1/x")
    return Job("1", "k", spec, JobState.RUNNING, 0, attempts, max_attempts, NOW, NOW, NOW)


def test_fatal_fails_at_once() -> None:
    record = classify(NotFound("404 for /x"), _job(1), POLICY, NOW)
    assert record.retry_at is None
    assert (record.error.error_class, record.error.message) == ("not_found", "404 for /x")


def test_transient_retries_with_backoff_and_retry_after_floor() -> None:
    assert classify(Throttled("slow"), _job(2), POLICY, NOW).retry_at == NOW + 20.0
    floor = classify(Throttled("slow", retry_after_s=90.0), _job(1), POLICY, NOW)
    assert floor.retry_at == NOW + 90.0


def test_last_attempt_fails() -> None:
    assert classify(Throttled(), _job(5, 5), POLICY, NOW).retry_at is None


def test_unknown_exceptions_are_transient_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    record = classify(RuntimeError("boom"), _job(1), POLICY, NOW)
    assert record.retry_at == NOW + 10.0
    assert (record.error.error_class, record.error.message) == ("transient", "RuntimeError: boom")
    assert "boom" in caplog.text


def test_a_refused_connection_is_checked_once_more_then_fails() -> None:
    refused = ConnectionRefused("cannot connect to 127.0.0.1:1 (Connection refused)")
    first = classify(refused, _job(1), POLICY, NOW)
    assert first.retry_at == NOW + 10.0  # one re-check, after the job's own backoff
    second = classify(refused, _job(2), POLICY, NOW)
    assert second.retry_at is None and second.error.error_class == "connection"


def test_an_unwritable_directory_is_retried_later_like_a_full_disk() -> None:
    cause = OSError(errno.EROFS, "Read-only file system")
    try:
        raise LocalError("read-only file system: /out/x.part") from cause
    except LocalError as exc:
        error = exc
    record = classify(error, _job(1), POLICY, NOW)
    assert record.retry_at is not None and record.retry_at >= NOW + DISK_FULL_RETRY_S
    assert record.error.error_class == "local"
    other = classify(LocalError("name too long"), _job(1), POLICY, NOW)
    assert other.retry_at is None  # other local errors still fail at once
