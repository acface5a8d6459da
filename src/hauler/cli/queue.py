"""Queue operations: add, status, jobs, requeue, clear, explain, pause, resume, stop."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hauler.cli.app import app, globals_of, usage_error
from hauler.cli.connection import stderr, with_store
from hauler.cli.queue_views import (
    counts_table,
    job_record,
    jobs_table,
    print_json,
    worker_record,
    workers_table,
)
from hauler.clock import yield_now
from hauler.errors import ErrorClass
from hauler.intake import BadLine, read_batches
from hauler.models import JobKind, JobState
from hauler.redact import printable, redact_url
from hauler.store import AddResult, JobFilter, Store
from hauler.units import parse_duration
from hauler.worker.explain import FleetView, explain

stdout = Console(highlight=False, soft_wrap=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MAX_BAD_KEPT = 1000
FAILURE_CLASSES = ", ".join(ErrorClass)
ReasonOpt = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help=f"Only jobs whose last failure has this class, one of: {FAILURE_CLASSES}.",
        show_default=False,
    ),
]
EXIT_BAD_INPUT = 1


@dataclasses.dataclass(slots=True)
class AddTally:
    """What ``hauler add`` did over its whole input."""

    added: int = 0
    skipped: int = 0
    bad: int = 0
    bad_lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _store_url(ctx: typer.Context) -> str:
    return globals_of(ctx).settings.store


@contextmanager
def _input_lines(urls: list[str], input_file: Path | None) -> Iterator[Iterable[str]]:
    """The lines to add: from ``-i FILE``, from stdin (``-i -`` or ``-``), or the arguments."""
    # Bytes that are not UTF-8 come through as lone surrogates, and the line holding them is
    # reported bad (as `get` does) instead of being stored with U+FFFD in place of them.
    if input_file is not None and str(input_file) != "-":
        try:
            handle = input_file.open(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {input_file}: {exc.strerror or exc}", param_hint="'-i'"
            ) from None
        with handle:
            yield handle
    elif urls == ["-"] or input_file is not None:
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
    else:
        yield urls


async def _add_lines(
    store: Store, lines: Iterable[str], defaults: dict[str, Any], is_quiet: bool
) -> AddTally:
    tally = AddTally()
    pending: asyncio.Task[AddResult] | None = None
    try:
        for batch in read_batches(lines, defaults):
            _note_bad(tally, batch.bad, is_quiet)
            if pending is not None:
                _note_added(tally, await pending)
                pending = None
            if batch.specs:
                # The store writes this batch while the next one is parsed.
                pending = asyncio.create_task(store.add(batch.specs))
                await yield_now()
        if pending is not None:
            _note_added(tally, await pending)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
    return tally


def _note_added(tally: AddTally, result: AddResult) -> None:
    tally.added += result.added
    tally.skipped += result.skipped


def _note_bad(tally: AddTally, bad_lines: list[BadLine], is_quiet: bool) -> None:
    for bad in bad_lines:
        tally.bad += 1
        if len(tally.bad_lines) < MAX_BAD_KEPT:
            tally.bad_lines.append(dataclasses.asdict(bad))
            if not is_quiet:
                text = printable(redact_url(bad.text))
                stderr.print(f"line {bad.line_no}: {bad.reason}: {text}", markup=False)


@app.command("add")
def add_command(
    ctx: typer.Context,
    *,
    urls: Annotated[
        list[str] | None, typer.Argument(help="URLs (or JSON lines); `-` reads stdin.")
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("-i", "--input", help="A file of URLs or JSON lines (`-`: stdin)."),
    ] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first.")] = 0,
    collection: Annotated[str, typer.Option("--collection")] = "default",
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, max=1000)] = 5,
    kind: Annotated[JobKind, typer.Option("--kind")] = JobKind.AUTO,
    output: Annotated[
        str | None, typer.Option("--output", help="Output name or path template.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue downloads. Duplicates (the download archive) are skipped; bad lines are reported."""
    defaults: dict[str, Any] = {
        "priority": priority,
        "collection": collection,
        "max_attempts": max_attempts,
        "kind": kind,
        "output": output,
    }
    with _input_lines(urls or [], input_file) as lines:
        tally = with_store(
            _store_url(ctx), lambda store: _add_lines(store, lines, defaults, as_json)
        )
    if as_json:
        print_json(dataclasses.asdict(tally))
    else:
        bad = f", {tally.bad} bad lines" if tally.bad else ""
        stdout.print(f"added {tally.added}, skipped {tally.skipped} duplicates{bad}")
    if tally.bad:
        raise typer.Exit(EXIT_BAD_INPUT)


async def _status(store: Store) -> dict[str, Any]:
    counts = await store.counts()
    workers = await store.workers()
    is_fleet_paused, paused_workers = await store.paused_workers()
    return {
        "jobs": {str(state): counts.get(state, 0) for state in JobState},
        "workers": [worker_record(w) for w in workers],
        "paused": {"fleet": is_fleet_paused, "workers": paused_workers},
        "stop_requested_at": await store.stop_requested_at(),
        "_counts": counts,
        "_workers": workers,
    }


@app.command("status")
def status_command(ctx: typer.Context, *, as_json: JsonFlag = False) -> None:
    """Jobs per state, live workers with their jobs and speed, pause flags."""
    status = with_store(_store_url(ctx), _status)
    counts, workers = status.pop("_counts"), status.pop("_workers")
    if as_json:
        print_json(status)
        return
    stdout.print(counts_table(counts))
    stdout.print()
    if workers:
        stdout.print(workers_table(workers))
    else:
        stdout.print("no live workers")
    paused = status["paused"]
    if paused["fleet"] or paused["workers"]:
        who = "the whole fleet" if paused["fleet"] else ", ".join(paused["workers"])
        stdout.print(f"paused: {who}")


@app.command("jobs")
def jobs_command(
    ctx: typer.Context,
    *,
    state: Annotated[JobState | None, typer.Option("--state")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, most recently updated first."""
    flt = JobFilter(state=state, limit=limit)
    jobs = with_store(_store_url(ctx), lambda store: store.list_jobs(flt))
    if as_json:
        print_json([job_record(job) for job in jobs])
    else:
        stdout.print(jobs_table(jobs))


def _filter(
    state: JobState | None, reason: str | None, host: str | None, since: str | None
) -> JobFilter:
    try:
        since_at = None if since is None else time.time() - parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if reason is not None and reason not in {c.value for c in ErrorClass}:
        usage_error(f"--reason {reason!r} is not a failure class; accepted: {FAILURE_CLASSES}")
    return JobFilter(state=state, reason=reason, host=host and host.lower(), since=since_at)


@app.command("requeue")
def requeue_command(
    ctx: typer.Context,
    *,
    state: Annotated[JobState, typer.Option("--state")] = JobState.FAILED,
    reason: ReasonOpt = None,
    host: Annotated[str | None, typer.Option("--host")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Updated within, e.g. 2h.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Put failed (or done, retrying) jobs back in the queue with their attempts reset."""
    flt = _filter(state, reason, host, since)
    moved = with_store(_store_url(ctx), lambda store: store.requeue(flt))
    if as_json:
        print_json({"requeued": moved})
    else:
        stdout.print(f"requeued {moved} jobs")


@app.command("clear")
def clear_command(
    ctx: typer.Context,
    *,
    state: Annotated[JobState | None, typer.Option("--state")] = None,
    reason: ReasonOpt = None,
    host: Annotated[str | None, typer.Option("--host")] = None,
    since: Annotated[str | None, typer.Option("--since")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Needed to clear every job.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete jobs (and forget their dedupe keys). Clearing everything needs --yes."""
    flt = _filter(state, reason, host, since)
    if flt == JobFilter() and not yes:
        stderr.print("hauler: this deletes every job; add --yes, or narrow it with --state")
        raise typer.Exit(2)
    deleted = with_store(_store_url(ctx), lambda store: store.clear(flt))
    if as_json:
        print_json({"cleared": deleted})
    else:
        stdout.print(f"cleared {deleted} jobs")


async def _explain(store: Store, job_id: str, affinity_s: float) -> dict[str, Any] | None:
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
    return {"job": job_record(job), "reasons": explain(job, fleet)}


@app.command("explain")
def explain_command(ctx: typer.Context, job_id: str, *, as_json: JsonFlag = False) -> None:
    """Why a job waits (or failed, or where it runs)."""
    affinity_s = globals_of(ctx).settings.worker.affinity_s
    found = with_store(_store_url(ctx), lambda store: _explain(store, job_id, affinity_s))
    if found is None:
        stderr.print(f"hauler: no job {job_id}", markup=False)
        raise typer.Exit(1)
    if as_json:
        print_json(found)
        return
    stdout.print(f"job {job_id}", markup=False)
    for line in found["reasons"]:
        stdout.print(f"  {line}", markup=False)


def _set_paused(ctx: typer.Context, paused: bool, worker: str | None, as_json: bool) -> None:
    with_store(_store_url(ctx), lambda store: store.set_paused(paused, worker))
    if as_json:
        print_json({"paused": paused, "worker": worker})
    else:
        stdout.print(f"{'paused' if paused else 'resumed'} {worker or 'the whole fleet'}")


@app.command("pause")
def pause_command(
    ctx: typer.Context,
    *,
    worker: Annotated[str | None, typer.Option("--worker", help="Only this worker.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop taking new jobs (running ones finish)."""
    _set_paused(ctx, True, worker, as_json)


@app.command("resume")
def resume_command(
    ctx: typer.Context,
    *,
    worker: Annotated[str | None, typer.Option("--worker", help="Only this worker.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Take new jobs again."""
    _set_paused(ctx, False, worker, as_json)


@app.command("stop")
def stop_command(ctx: typer.Context, *, as_json: JsonFlag = False) -> None:
    """Ask every running worker to exit gracefully (workers started later are not affected)."""
    at = with_store(_store_url(ctx), lambda store: store.request_stop())
    if as_json:
        print_json({"stop_requested_at": at})
    else:
        stdout.print("stop requested: workers finish their running jobs and exit")
