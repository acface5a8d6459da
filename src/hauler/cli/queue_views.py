"""How jobs, workers and queue counts look to people: rich tables (the JSON records for scripts
are ``hauler.views``).

The store keeps a job's secrets (URL passwords, Authorization/Cookie/API-key headers: the worker
needs them); everything here shows them masked. Text a server controls (error messages, result
names and URLs) reaches the terminal through ``printable``; JSON escapes it by itself.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from hauler.models import Job, JobState, WorkerInfo
from hauler.redact import Redactor, printable


def print_json(value: Any) -> None:
    """One JSON document on stdout (not through rich: scripts parse it)."""
    sys.stdout.write(json.dumps(value, indent=None, sort_keys=False) + "\n")


def clock_time(epoch_s: float | None) -> str:
    """``23:10:05`` today's UTC time of ``epoch_s``, or ``-``."""
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%m-%d %H:%M:%S")


def jobs_table(jobs: list[Job]) -> Table:
    """id, state, attempts, url, error, updated (secrets masked, server text escaped)."""
    table = Table("id", "state", "attempts", "url", "error", "updated", box=None)
    for job in jobs:
        redact = Redactor.for_specs([job.spec])
        error = f"{job.error.error_class}: {redact.text(job.error.message)}" if job.error else ""
        table.add_row(
            job.id,
            str(job.state),
            f"{job.attempts}/{job.max_attempts}",
            # Text, not str: a URL or message holding "[...]" is not rich markup.
            Text(printable(redact.url(job.spec.url))),
            Text(printable(error)),
            clock_time(job.updated_at),
        )
    return table


def counts_table(counts: dict[JobState, int]) -> Table:
    """One row: the number of jobs in every state, and the total."""
    table = Table(*[str(s) for s in JobState], "total", box=None)
    table.add_row(*[str(counts.get(s, 0)) for s in JobState], str(sum(counts.values())))
    return table


def workers_table(workers: list[WorkerInfo]) -> Table:
    """name, node, lanes in use, speed, bytes, paused, current jobs."""
    table = Table("worker", "node", "busy", "live", "speed", "bytes", "paused", "jobs", box=None)
    for info in workers:
        live = (
            f"{info.recording} rec, {info.watching} watch"
            if info.recording or info.watching
            else ""
        )
        table.add_row(
            info.name,
            info.node,
            f"{len(info.current_jobs)}/{info.concurrency}",
            live,
            f"{human_bytes(info.bytes_per_s)}/s",
            human_bytes(info.bytes_total),
            "yes" if info.is_paused else "",
            " ".join(info.current_jobs[:4]) + (" …" if len(info.current_jobs) > 4 else ""),
        )
    return table


def human_bytes(count: float) -> str:
    """``1.5 MiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
