"""What metrics and the dashboard subscribe to: an ``Observer`` the worker, ``get``'s batch, the
pipeline (and later the pools) report to, instead of counters added inside the runner.

Observers are called on the event loop, in the middle of the work: they must return at once
(count, append, set an event) and never block. ``Observers`` fans one report out to several and
keeps one that raises from breaking the others or the worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

logger = logging.getLogger(__name__)


class Finish(StrEnum):
    """How a job's attempt in this worker ended."""

    DONE = "done"
    FAILED = "failed"  # for good: no attempts left, or a failure no retry can fix
    RETRYING = "retrying"  # failed, to be tried again after a delay (``Observer.retried``)
    LOST = "lost"  # the lease ran out or was taken over: another worker owns the job
    RELEASED = "released"  # not finished at shutdown: handed back to the queue
    CRASHED = "crashed"  # the lane raised: a bug (logged with its traceback)


class Observer(Protocol):
    """What happens to jobs (and, later, to pooled resources) as it happens."""

    def job_started(self, job_id: str, url: str) -> None:
        """A lane started job ``job_id`` (``url`` is the job's, secrets masked)."""

    def job_finished(
        self, job_id: str, finish: Finish, error_class: str | None, nbytes: int
    ) -> None:
        """The lane of job ``job_id`` ended: how, the failure class if it failed, and the bytes
        this attempt transferred."""

    def bytes_transferred(self, nbytes: int) -> None:
        """``nbytes`` more bytes were written, by any lane."""

    def job_handled(
        self, job_id: str | None, kind: str, error_class: str | None, elapsed_s: float
    ) -> None:
        """The pipeline ran a job of ``kind`` (``file``, ``media``…) for ``elapsed_s``: to its
        artifacts (``error_class`` None) or to an error of that class."""

    def retried(self, job_id: str, error_class: str, delay_s: float) -> None:
        """Job ``job_id`` failed with ``error_class`` and will be tried again in ``delay_s``."""

    def pool_event(self, kind: str, resource: str) -> None:
        """A pooled resource (a proxy, an account) changed: ``kind`` says how (for the pools
        issue; nothing reports it yet)."""


class NullObserver:
    """An observer that ignores everything: the default."""

    def job_started(self, job_id: str, url: str) -> None:
        """Ignored."""

    def job_finished(
        self, job_id: str, finish: Finish, error_class: str | None, nbytes: int
    ) -> None:
        """Ignored."""

    def bytes_transferred(self, nbytes: int) -> None:
        """Ignored."""

    def job_handled(
        self, job_id: str | None, kind: str, error_class: str | None, elapsed_s: float
    ) -> None:
        """Ignored."""

    def retried(self, job_id: str, error_class: str, delay_s: float) -> None:
        """Ignored."""

    def pool_event(self, kind: str, resource: str) -> None:
        """Ignored."""


class Observers:
    """Several observers as one, called in order; one that raises is logged and skipped."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def job_started(self, job_id: str, url: str) -> None:
        """Told to each."""
        for observer in self.observers:
            _guarded(observer.job_started, job_id, url)

    def job_finished(
        self, job_id: str, finish: Finish, error_class: str | None, nbytes: int
    ) -> None:
        """Told to each."""
        for observer in self.observers:
            _guarded(observer.job_finished, job_id, finish, error_class, nbytes)

    def bytes_transferred(self, nbytes: int) -> None:
        """Told to each."""
        for observer in self.observers:
            _guarded(observer.bytes_transferred, nbytes)

    def job_handled(
        self, job_id: str | None, kind: str, error_class: str | None, elapsed_s: float
    ) -> None:
        """Told to each."""
        for observer in self.observers:
            _guarded(observer.job_handled, job_id, kind, error_class, elapsed_s)

    def retried(self, job_id: str, error_class: str, delay_s: float) -> None:
        """Told to each."""
        for observer in self.observers:
            _guarded(observer.retried, job_id, error_class, delay_s)

    def pool_event(self, kind: str, resource: str) -> None:
        """Told to each."""
        for observer in self.observers:
            _guarded(observer.pool_event, kind, resource)


def _guarded(report: Callable[..., None], *args: object) -> None:
    try:
        report(*args)
    except Exception:
        logger.exception("observer %r failed", report)
