"""``hauler get``: download URLs now, in the foreground, through the same pipeline as a worker.

Heavy modules (the engine, aiohttp, rich.progress) are imported inside the command, so that
``hauler --help`` and usage errors stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer

from hauler.cli import mediaoptions
from hauler.cli.app import app, globals_of
from hauler.cli.getflags import (
    AllowOverwrite,
    ChecksumOpt,
    Connections,
    Continue,
    Cookies,
    Directory,
    DryRun,
    FileRate,
    Force,
    Header,
    InputFile,
    JsonOutput,
    LimitRate,
    NoClobber,
    NoPools,
    NoProgress,
    Output,
    Parallel,
    Processes,
    Proxy,
    Quiet,
    Referer,
    Retries,
    Timeout,
    Urls,
    UserAgent,
    Verbose,
)
from hauler.cli.getoptions import Account, Region
from hauler.exitcodes import exit_status
from hauler.models import JobKind

if TYPE_CHECKING:
    from hauler.cli.getoutput import Display
    from hauler.config import TransferSettings
    from hauler.local.batch import BatchOptions
    from hauler.local.outcome import FileOutcome
    from hauler.models import JobSpec, OnExisting
    from hauler.redact import Redactor

T = TypeVar("T")

EXIT_FAILED = 1  # some files failed for mixed causes; one cause has its code (hauler.exitcodes)
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
PROXY_SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")


@dataclass(frozen=True, slots=True)
class _Request:
    """How each request goes out: headers, cookies, identity and patience."""

    headers: list[str]
    user_agent: str | None
    referer: str | None
    cookies: Path | None
    timeout_s: float | None
    retries: int | None


@app.command("get")
def get_command(
    ctx: typer.Context,
    urls: Urls = None,
    *,
    directory: Directory = None,
    output: Output = None,
    connections: Connections = None,
    parallel: Parallel = 5,
    input_file: InputFile = None,
    checksum: ChecksumOpt = None,
    resume: Continue = False,
    no_clobber: NoClobber = False,
    allow_overwrite: AllowOverwrite = False,
    force: Force = False,
    header: Header = None,
    user_agent: UserAgent = None,
    referer: Referer = None,
    load_cookies: Cookies = None,
    timeout: Timeout = None,
    retries: Retries = None,
    proxy: Proxy = None,
    no_pools: NoPools = False,
    region: Region = None,
    account: Account = None,
    limit_rate: LimitRate = None,
    max_rate_per_file: FileRate = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
    no_progress: NoProgress = False,
    dry_run: DryRun = False,
    json_output: JsonOutput = False,
    processes: Processes = None,
    kind: mediaoptions.Kind = JobKind.AUTO,
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
    list_formats: mediaoptions.ListFormats = False,
) -> None:
    """Download URLs into a directory: many connections per file, several files at once.

    Interrupted downloads resume when the same command runs again. A name already taken by
    another file gets a new one (name.1.ext) unless -n, -c or --allow-overwrite says otherwise.

    Exit status: 0 when every file is complete and verified; when files failed, the code of
    their one cause (4 not found, 5 forbidden, 6 network, 7 local disk, 8 content, 9 bad
    request) or 1 for mixed causes; 2 for usage errors, 130 on Ctrl-C, 143 on SIGTERM.
    """
    from hauler.cli import getoptions
    from hauler.cli.getoutput import Display, print_dry_run
    from hauler.redact import Redactor

    _set_log_level(verbose, quiet)
    policy = _on_existing(force, allow_overwrite, no_clobber, resume)
    specs = _jobs(urls or [], input_file, checksum)
    media = mediaoptions.media_fields(
        format_text=format_text,
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
    specs = mediaoptions.with_media(specs, kind, media)
    if kind is JobKind.MEDIA or any(spec.kind is JobKind.MEDIA for spec in specs):
        from hauler.cli.joblist import unique_jobs
        from hauler.ops import keyed_by_video

        specs = unique_jobs(keyed_by_video(specs))  # two URLs of one video: one download
    where = _usage(lambda: getoptions.destination(directory, output, len(specs)))
    asked = _Request(header or [], user_agent, referer, load_cookies, timeout, retries)
    specs = _with_request(getoptions.with_filename(specs, where.filename), asked)
    specs = getoptions.with_pins(specs, _usage(lambda: getoptions.pool_pins(region, account)))
    settings = _transfer_settings(ctx, connections, limit_rate, proxy, asked)
    per_file_rate = _rate(max_rate_per_file, "--max-rate-per-file")
    display = Display(json_output, quiet, not no_progress)
    redact = Redactor.for_run(specs, settings.proxy)
    if list_formats:
        from hauler.cli import formatlist

        _exit_now(formatlist.run(specs, settings.proxy, json_output, redact))
    if dry_run:
        print_dry_run(specs, where.output_dir, redact, json_output)
        _exit_now(0)
    _prepare_output_dir(where.output_dir)
    from hauler.local.batch import BatchOptions

    options = BatchOptions(
        where.output_dir,
        parallel,
        on_existing=policy,
        connections=connections,
        per_file_rate_bps=per_file_rate,
        proxy=proxy,
        store_url=globals_of(ctx).settings.store,
        pools=None if no_pools else globals_of(ctx).settings.pools,
        hosts=globals_of(ctx).settings.hosts,
    )
    _exit_now(
        _execute(specs, settings, options, display=display, processes=processes, redact=redact)
    )


def _usage(compute: Callable[[], T]) -> T:
    """``compute()``, with an ``OptionError`` shown as a usage error (exit 2) on its option."""
    from hauler.cli import getoptions

    try:
        return compute()
    except getoptions.OptionError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{exc.option}'") from exc


def _on_existing(force: bool, allow_overwrite: bool, no_clobber: bool, resume: bool) -> OnExisting:
    from hauler.cli import getoptions

    return _usage(
        lambda: getoptions.on_existing(
            overwrite=force, allow_overwrite=allow_overwrite, no_clobber=no_clobber, resume=resume
        )
    )


def _set_log_level(verbose: int, quiet: bool) -> None:
    """``-v`` INFO, ``-vv`` DEBUG (never less than ``--log-level`` asked); ``-q`` ERROR."""
    root = logging.getLogger("hauler")
    if verbose:
        root.setLevel(
            min(root.level or logging.WARNING, logging.DEBUG if verbose > 1 else logging.INFO)
        )
    elif quiet:
        root.setLevel(max(root.level, logging.ERROR))


def _with_request(specs: list[JobSpec], asked: _Request) -> list[JobSpec]:
    """The specs with ``-H``, ``--referer`` and ``--load-cookies`` applied (a JSON line's own
    headers win)."""
    from hauler.cli import getoptions
    from hauler.cookies import Cookie, CookieFileError, load_cookie_file

    texts = ([f"Referer: {asked.referer}"] if asked.referer is not None else []) + asked.headers
    headers = _usage(lambda: getoptions.parse_headers(texts))
    cookies: list[Cookie] = []
    if asked.cookies is not None:
        try:
            cookies = load_cookie_file(asked.cookies)
        except CookieFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--load-cookies'") from exc
    return getoptions.with_request_headers(specs, headers, cookies, time.time())


def _exit_now(status: int) -> NoReturn:
    """End the process without the interpreter's teardown.

    Freeing every module and object of a finished ``get`` takes ~50 ms, a tenth of its start-up,
    and changes nothing: by now every file is renamed or flushed and closed, every child reaped,
    the report printed. Logs and the standard streams are flushed here.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing to flush to
            stream.flush()
    os._exit(status)


def _jobs(urls: list[str], input_file: str | None, checksum: str | None) -> list[JobSpec]:
    """The specs to download, or a usage error (exit 2) naming what is wrong."""
    from hauler.cli.joblist import JobListError, collect_jobs
    from hauler.models import Checksum

    try:
        specs = collect_jobs(urls, input_file)
    except JobListError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not specs:
        raise typer.BadParameter("give at least one URL, or -i FILE", param_hint="'URLS'")
    if checksum is None:
        return specs
    if len(specs) != 1:
        raise typer.BadParameter(
            f"applies to exactly one URL, got {len(specs)}; "
            "put per-file checksums in a JSON lines input file",
            param_hint="'--checksum'",
        )
    try:
        return [specs[0].model_copy(update={"checksum": Checksum.parse(checksum)})]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--checksum'") from exc


def _rate(text: str | None, option: str) -> int | None:
    """A rate option in bytes per second; 0 or absent means no limit."""
    from hauler.units import parse_size

    if text is None:
        return None
    try:
        return parse_size(text) or None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from exc


def _check_proxy(proxy: str | None) -> None:
    """Refuse a proxy URL we cannot use; the message never repeats the URL (it may hold a
    password).
    """
    if proxy is None:
        return
    try:
        parts = urlsplit(proxy)
        is_usable = parts.scheme.lower() in PROXY_SCHEMES and bool(parts.hostname)
        _ = parts.port
    except ValueError:
        is_usable = False
    if not is_usable:
        raise typer.BadParameter(
            "expected scheme://[user:password@]host:port with scheme one of "
            + ", ".join(PROXY_SCHEMES),
            param_hint="'--proxy'",
        )


def _transfer_settings(
    ctx: typer.Context,
    connections: int | None,
    limit_rate: str | None,
    proxy: str | None,
    asked: _Request,
) -> TransferSettings:
    """The engine's settings with this command's overrides applied."""
    _check_proxy(proxy)
    update: dict[str, object] = {"limit_rate_bps": _rate(limit_rate, "--limit-rate")}
    if connections is not None:
        update["connections"] = connections
    if proxy is not None:
        update["proxy"] = proxy
    if asked.user_agent is not None:
        update["user_agent"] = asked.user_agent
    if asked.timeout_s is not None:
        update["connect_timeout_s"] = update["read_timeout_s"] = asked.timeout_s
    if asked.retries is not None:
        update["segment_retries"] = asked.retries
    return globals_of(ctx).settings.transfer.model_copy(update=update)


def _prepare_output_dir(output_dir: Path) -> None:
    """Create the output directory; a usage error (exit 2) when that is impossible."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create {output_dir}: {exc.strerror or exc}", param_hint="'-d'"
        ) from exc


def _execute(
    specs: list[JobSpec],
    settings: TransferSettings,
    options: BatchOptions,
    *,
    display: Display,
    processes: int | None,
    redact: Redactor,
) -> int:
    """Run the batch (in one process or several) and report it; the process exit status."""
    from hauler.local.fanout import available_cores, process_count

    count = process_count(
        len(specs), options.parallel, processes, available_cores(), bool(settings.limit_rate_bps)
    )
    if count > 1:
        status, outcomes = _run_forked(
            specs, settings, options, redact, processes=count, display=display
        )
    else:
        status, outcomes = _run_here(specs, settings, options, redact, display)
    if status:
        print(
            f"interrupted after {len(outcomes)} of {len(specs)} files; partial downloads are "
            "kept: run the same command again to resume",
            file=sys.stderr,
        )
        return status
    if len(outcomes) != len(specs):
        return EXIT_FAILED
    return int(exit_status(o.error.code for o in outcomes if o.error is not None))


def _run_here(
    specs: list[JobSpec],
    settings: TransferSettings,
    options: BatchOptions,
    redact: Redactor,
    display: Display,
) -> tuple[int, list[FileOutcome]]:
    """One process, one event loop: the exit status so far and the outcomes."""
    import asyncio

    from hauler.local.batch import Batch

    reporter = display.reporter(redact, len(specs))
    batch = Batch(specs, options, reporter, redact)
    started = time.monotonic()
    status = 0
    try:
        asyncio.run(batch.run(settings))
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except asyncio.CancelledError:
        status = EXIT_TERMINATED
    finally:
        # Also on a crash: stop the live display before the traceback prints.
        reporter.close(batch.ordered(), time.monotonic() - started)
    return status, batch.ordered()


def _run_forked(
    specs: list[JobSpec],
    settings: TransferSettings,
    options: BatchOptions,
    redact: Redactor,
    *,
    processes: int,
    display: Display,
) -> tuple[int, list[FileOutcome]]:
    """Several processes, forked before the reporter starts (bars run a thread)."""
    from hauler.local.fanout import FanOut

    with_progress = display.bar_stream() is not None
    fan = FanOut(specs, options, settings, redact, processes, with_progress)
    started = time.monotonic()
    fan.start()
    reporter = display.reporter(redact, len(specs))
    status = 0
    try:
        status = fan.collect(reporter)
    finally:
        reporter.close(fan.ordered(), time.monotonic() - started)
    return status, fan.ordered()
