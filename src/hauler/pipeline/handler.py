"""The seam every kind plugs into: a ``Handler`` runs one ``JobRun`` to an ``Outcome``.

A handler downloads; it does not decide retries (the caller does, from the error's class), nor
pick proxies or accounts (the acquire stage hands it ``Resources``), nor rename staged files into
place (the verify and finalize stages do, for every kind alike).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hauler.models import JobSpec, OnExisting
from hauler.pipeline.outcome import Outcome
from hauler.progress import ProgressSink


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The choices a run (a ``get``, a worker) makes for all of its jobs."""

    on_existing: OnExisting = OnExisting.RENAME
    connections: int | None = None
    limit_rate_bps: int | None = None


@dataclass(frozen=True, slots=True)
class Resources:
    """What the acquire stage lends one job: the proxy to go through, and headers to add (an
    account's cookies or token). Released when the job ends, however it ends."""

    proxy: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Which pool resources they are (their ids, never their secrets), for the job's result.
    proxy_id: str | None = None
    account_id: str | None = None


async def _discard(result: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Continuation:
    """What a long job (a recording of hours) keeps across attempts and workers.

    ``previous``: the result an earlier attempt recorded while it ran (the parts it closed, the
    part it had open), or None. ``save`` records the result so far on the running job (the
    worker: in the store, under the job's fencing token; ``LeaseLost`` when it is no longer
    ours). ``stop``: set when the run should end early and cleanly (SIGTERM, ``hauler stop``,
    Ctrl-C): a recording closes its part and raises ``Interrupted``, and the job goes back to
    the queue for another worker to continue.
    """

    previous: Mapping[str, Any] | None = None
    save: Callable[[dict[str, Any]], Awaitable[None]] = _discard
    stop: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class JobRun:
    """One job as a handler sees it: what to fetch, where to, with what, telling whom."""

    spec: JobSpec
    job_id: str | None
    output_dir: Path
    options: RunOptions
    resources: Resources
    progress: ProgressSink
    continuation: Continuation = field(default_factory=Continuation)

    @property
    def headers(self) -> dict[str, str]:
        """The job's own headers, then the lent resources' (an account's cookie wins)."""
        return {**self.spec.headers, **self.resources.headers}


class Handler(Protocol):
    """Runs jobs of one kind."""

    async def run(self, job: JobRun) -> Outcome:
        """Download ``job`` into ``job.output_dir``; its artifacts, final or staged.

        Raises the ``HaulerError`` taxonomy only: its class tells the caller what to do next.
        """
        ...
