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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import urlsplit

import typer

from hauler.cli.app import app, globals_of

if TYPE_CHECKING:
    from hauler.cli.batch import BatchOptions
    from hauler.cli.report import FileOutcome, Reporter
    from hauler.config import TransferSettings
    from hauler.models import JobSpec
    from hauler.redact import Redactor

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
PROXY_SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")


Urls = Annotated[
    list[str] | None, typer.Argument(help="URLs to download.", metavar="URL...", show_default=False)
]
OutputDir = Annotated[Path, typer.Option("-o", "--output-dir", help="Directory for the files.")]
Connections = Annotated[
    int | None,
    typer.Option("-x", "--connections", min=1, max=1024, help="Connections per file (default 8)."),
]
Parallel = Annotated[
    int, typer.Option("-j", "--parallel", min=1, max=100_000, help="Files at once.")
]
InputFile = Annotated[
    str | None, typer.Option("-i", "--input-file", help="File of URLs or JSON lines (- for stdin).")
]
ChecksumOpt = Annotated[
    str | None, typer.Option(help="ALGO=HEX expected for the single URL (sha256=..., md5=...).")
]
Proxy = Annotated[str | None, typer.Option(help="http://, https:// or socks5:// proxy URL.")]
LimitRate = Annotated[
    str | None, typer.Option(help="Overall speed limit, e.g. 4M or 500K (0: none).")
]
FileRate = Annotated[str | None, typer.Option(help="Speed limit per file, e.g. 1M.")]
Force = Annotated[bool, typer.Option("--force", help="Download again files that exist.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")]
Processes = Annotated[
    int | None,
    typer.Option(
        "-P",
        "--processes",
        min=1,
        max=1024,
        help="Processes to spread the files over (default: one per CPU core when there are "
        "enough files; 1 with --limit-rate).",
        show_default=False,
    ),
]


@app.command("get")
def get_command(
    ctx: typer.Context,
    urls: Urls = None,
    *,
    output_dir: OutputDir = Path("."),
    connections: Connections = None,
    parallel: Parallel = 5,
    input_file: InputFile = None,
    checksum: ChecksumOpt = None,
    proxy: Proxy = None,
    limit_rate: LimitRate = None,
    max_rate_per_file: FileRate = None,
    force: Force = False,
    json_output: JsonOutput = False,
    processes: Processes = None,
) -> None:
    """Download URLs into a directory: many connections per file, several files at once.

    Interrupted downloads resume when the same command runs again.
    Exit status: 0 when every file is complete and verified, 1 when any failed,
    2 for usage errors, 130 on Ctrl-C.
    """
    specs = _jobs(urls or [], input_file, checksum)
    settings = _transfer_settings(ctx, connections, limit_rate, proxy)
    per_file_rate = _rate(max_rate_per_file, "--max-rate-per-file")
    _prepare_output_dir(output_dir)
    from hauler.cli.batch import BatchOptions

    options = BatchOptions(output_dir, parallel, force, connections, per_file_rate, proxy)
    _exit_now(_execute(specs, settings, options, json_output, processes))


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
    ctx: typer.Context, connections: int | None, limit_rate: str | None, proxy: str | None
) -> TransferSettings:
    """The engine's settings with this command's overrides applied."""
    _check_proxy(proxy)
    update: dict[str, object] = {"limit_rate_bps": _rate(limit_rate, "--limit-rate")}
    if connections is not None:
        update["connections"] = connections
    if proxy is not None:
        update["proxy"] = proxy
    return globals_of(ctx).settings.transfer.model_copy(update=update)


def _prepare_output_dir(output_dir: Path) -> None:
    """Create the output directory; a usage error (exit 2) when that is impossible."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create {output_dir}: {exc.strerror or exc}", param_hint="'-o'"
        ) from exc


def _execute(
    specs: list[JobSpec],
    settings: TransferSettings,
    options: BatchOptions,
    json_output: bool,
    processes: int | None,
) -> int:
    """Run the batch (in one process or several) and report it; the process exit status."""
    from hauler.cli.fanout import available_cores, process_count
    from hauler.redact import Redactor

    redact = Redactor.for_run(specs, settings.proxy)
    count = process_count(
        len(specs), options.parallel, processes, available_cores(), bool(settings.limit_rate_bps)
    )
    if count > 1:
        status, outcomes = _run_forked(
            specs, settings, options, redact, processes=count, json_output=json_output
        )
    else:
        status, outcomes = _run_here(specs, settings, options, redact, json_output)
    if status:
        print(
            f"interrupted after {len(outcomes)} of {len(specs)} files; partial downloads are "
            "kept: run the same command again to resume",
            file=sys.stderr,
        )
        return status
    return 0 if all(o.is_ok for o in outcomes) and len(outcomes) == len(specs) else EXIT_FAILED


def _run_here(
    specs: list[JobSpec],
    settings: TransferSettings,
    options: BatchOptions,
    redact: Redactor,
    json_output: bool,
) -> tuple[int, list[FileOutcome]]:
    """One process, one event loop: the exit status so far and the outcomes."""
    import asyncio

    from hauler.cli.batch import Batch

    reporter = _reporter(redact, json_output)
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
    json_output: bool,
) -> tuple[int, list[FileOutcome]]:
    """Several processes, forked before the reporter starts (bars run a thread)."""
    from hauler.cli.fanout import FanOut

    fan = FanOut(specs, options, settings, redact, processes, _shows_bars(json_output))
    started = time.monotonic()
    fan.start()
    reporter = _reporter(redact, json_output)
    status = 0
    try:
        status = fan.collect(reporter)
    finally:
        reporter.close(fan.ordered(), time.monotonic() - started)
    return status, fan.ordered()


def _shows_bars(json_output: bool) -> bool:
    """Progress bars: on a terminal, unless ``--json``."""
    return not json_output and sys.stdout.isatty()


def _reporter(redact: Redactor, json_output: bool) -> Reporter:
    """Bars on a terminal, plain lines in a pipe, one JSON object with ``--json``."""
    from hauler.cli.report import JsonReporter, PlainReporter

    if json_output:
        return JsonReporter(redact)
    if _shows_bars(json_output):
        from hauler.cli.progressview import ProgressView

        return ProgressView(redact)
    return PlainReporter(redact)
