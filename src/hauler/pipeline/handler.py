"""The seam every kind plugs into: a ``Handler`` runs one ``JobRun`` to an ``Outcome``.

A handler downloads; it does not decide retries (the caller does, from the error's class), nor
pick proxies or accounts (the acquire stage hands it ``Resources``), nor rename staged files into
place (the verify and finalize stages do, for every kind alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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


@dataclass(frozen=True, slots=True)
class JobRun:
    """One job as a handler sees it: what to fetch, where to, with what, telling whom."""

    spec: JobSpec
    job_id: str | None
    output_dir: Path
    options: RunOptions
    resources: Resources
    progress: ProgressSink

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
