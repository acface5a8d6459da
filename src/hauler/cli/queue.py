"""Queue operations: add, status, jobs, requeue, clear, explain, pause, resume, stop."""

from __future__ import annotations

import dataclasses
import io
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hauler.cli import liveoptions, mediaoptions
from hauler.cli.app import app, globals_of, usage_error
from hauler.cli.connection import stderr, with_store
from hauler.cli.getoptions import Account, OptionError, Region, pool_pins
from hauler.cli.queue_views import counts_table, jobs_table, print_json, workers_table
from hauler.intake import BadLine
from hauler.models import JobKind, JobState, PoolPins
from hauler.ops import (
    FAILURE_CLASSES,
    AddTally,
    BadFilter,
    add_lines,
    clear,
    explain_job,
    job_filter,
    list_jobs,
    request_stop,
    requeue,
    selects_every_job,
    set_paused,
    status,
)
from hauler.redact import printable, redact_url
from hauler.store import JobFilter, JobStore
from hauler.views import explanation_record, job_record, status_record

stdout = Console(highlight=False, soft_wrap=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ReasonOpt = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help=f"Only jobs whose last failure has this class, one of: {FAILURE_CLASSES}.",
        show_default=False,
    ),
]
EXIT_BAD_INPUT = 1


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
    store: JobStore, lines: Iterable[str], defaults: dict[str, Any], is_quiet: bool
) -> AddTally:
    return await add_lines(store, lines, defaults, _quiet if is_quiet else _print_bad)


def _quiet(bad: BadLine) -> None:
    del bad


def _print_bad(bad: BadLine) -> None:
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
    kind: mediaoptions.Kind = JobKind.AUTO,
    output: Annotated[
        str | None, typer.Option("--output", help="Output name or path template.")
    ] = None,
    format_text: mediaoptions.Format = None,
    template: mediaoptions.Template = None,
    merge_format: mediaoptions.MergeFormat = None,
    info_json: mediaoptions.InfoJson = False,
    cookies: mediaoptions.MediaCookies = None,
    playlist_items: mediaoptions.PlaylistItems = None,
    max_downloads: mediaoptions.MaxDownloads = None,
    write_subs: mediaoptions.WriteSubs = False,
    sub_langs: mediaoptions.SubLangs = None,
    write_thumbnail: mediaoptions.WriteThumbnail = False,
    split: liveoptions.Split = None,
    max_duration: liveoptions.MaxDuration = None,
    poll: liveoptions.Poll = None,
    offline_grace: liveoptions.OfflineGrace = None,
    watch: liveoptions.Watch = False,
    container: liveoptions.ContainerOpt = None,
    remux: liveoptions.RemuxOpt = None,
    notify_url: liveoptions.NotifyUrl = None,
    region: Region = None,
    account: Account = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue downloads. Duplicates (the download archive) are skipped; bad lines are reported.

    Live options (--split, --watch, ...) make recordings (--kind live); -f then picks the
    room's stream."""
    live = liveoptions.live_fields(
        split=split,
        max_duration=max_duration,
        poll=poll,
        offline_grace=offline_grace,
        watch=watch,
        container=container,
        remux=remux,
        notify_url=notify_url,
    )
    if live is not None and kind is JobKind.AUTO:
        kind = JobKind.LIVE  # a --split or --watch is asked of recordings only
    is_live = kind is JobKind.LIVE
    if is_live and format_text is not None:
        live = liveoptions.with_format(live, format_text)
    defaults: dict[str, Any] = {
        "priority": priority,
        "collection": collection,
        "max_attempts": max_attempts,
        "kind": kind,
        "output": output,
    }
    media = mediaoptions.media_fields(
        format_text=None if is_live else format_text,
        template=template,
        merge_format=merge_format,
        info_json=info_json,
        cookies=cookies,
        playlist_items=playlist_items,
        max_downloads=max_downloads,
        write_subs=write_subs,
        sub_langs=sub_langs,
        write_thumbnail=write_thumbnail,
    )
    if media is not None:
        defaults["media"] = media
    if live is not None:
        defaults["live"] = live.model_dump(exclude_unset=True)
    pins = _pins(region, account)
    if pins is not None:
        defaults["pools"] = pins
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


def _pins(region: str | None, account: str | None) -> PoolPins | None:
    """``--region`` and ``--account`` as the jobs' pins (a bad one: a usage error on it)."""
    try:
        return pool_pins(region, account)
    except OptionError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{exc.option}'") from None


@app.command("status")
def status_command(ctx: typer.Context, *, as_json: JsonFlag = False) -> None:
    """Jobs per state, live workers with their jobs and speed, pause flags."""
    fleet = with_store(_store_url(ctx), status)
    if as_json:
        print_json(status_record(fleet))
        return
    stdout.print(counts_table(fleet.counts))
    recording = sum(w.recording for w in fleet.workers)
    watching = sum(w.watching for w in fleet.workers)
    if recording or watching:
        stdout.print(f"live: {recording} recording, {watching} watching")
    stdout.print()
    if fleet.workers:
        stdout.print(workers_table(fleet.workers))
    else:
        stdout.print("no live workers")
    if fleet.is_fleet_paused or fleet.paused_workers:
        who = "the whole fleet" if fleet.is_fleet_paused else ", ".join(fleet.paused_workers)
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
    jobs = with_store(_store_url(ctx), lambda store: list_jobs(store, state, limit))
    if as_json:
        print_json([job_record(job) for job in jobs])
    else:
        stdout.print(jobs_table(jobs))


def _filter(
    state: JobState | None, reason: str | None, host: str | None, since: str | None
) -> JobFilter:
    try:
        return job_filter(state, reason, host, since)
    except BadFilter as exc:
        if exc.flag == "--since":
            raise typer.BadParameter(exc.message, param_hint="--since") from None
        usage_error(exc.message)


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
    moved = with_store(_store_url(ctx), lambda store: requeue(store, flt))
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
    if selects_every_job(flt) and not yes:
        stderr.print("hauler: this deletes every job; add --yes, or narrow it with --state")
        raise typer.Exit(2)
    deleted = with_store(_store_url(ctx), lambda store: clear(store, flt))
    if as_json:
        print_json({"cleared": deleted})
    else:
        stdout.print(f"cleared {deleted} jobs")


@app.command("explain")
def explain_command(ctx: typer.Context, job_id: str, *, as_json: JsonFlag = False) -> None:
    """Why a job waits (or failed, or where it runs)."""
    affinity_s = globals_of(ctx).settings.worker.affinity_s
    found = with_store(_store_url(ctx), lambda store: explain_job(store, job_id, affinity_s))
    if found is None:
        stderr.print(f"hauler: no job {job_id}", markup=False)
        raise typer.Exit(1)
    if as_json:
        print_json(explanation_record(found))
        return
    stdout.print(f"job {job_id}", markup=False)
    for line in found.reasons:
        stdout.print(f"  {line}", markup=False)


def _set_paused(ctx: typer.Context, paused: bool, worker: str | None, as_json: bool) -> None:
    with_store(_store_url(ctx), lambda store: set_paused(store, paused, worker))
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
    at = with_store(_store_url(ctx), request_stop)
    if as_json:
        print_json({"stop_requested_at": at})
    else:
        stdout.print("stop requested: workers finish their running jobs and exit")
