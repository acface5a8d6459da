"""``hauler worker``: run one worker process of the fleet until its mode or a stop says to exit."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from hauler.cli.app import app, globals_of, usage_error
from hauler.cli.connection import store_failure
from hauler.cli.queue_views import human_bytes, print_json
from hauler.config import Settings, WorkerSettings
from hauler.errors import BadRequest, StoreUnavailable
from hauler.exitcodes import ExitCode, exit_status
from hauler.redact import redact_url
from hauler.worker.diskroom import prepare_output_dir
from hauler.worker.modes import Mode

if TYPE_CHECKING:
    from hauler.worker.runner import Summary, Worker

stdout = Console(highlight=False, soft_wrap=True)


def worker_settings(base: WorkerSettings, overrides: dict[str, Any]) -> WorkerSettings:
    """``base`` with the flags that were given (validated like the settings themselves);
    a bad value is a usage error naming the flag."""
    from pydantic import ValidationError

    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return WorkerSettings.model_validate(base.model_dump() | given)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        usage_error(f"bad value {first.get('input')!r} for {_FLAGS.get(key, key)}: {first['msg']}")


# The flag that sets each worker setting, for error messages.
_FLAGS = {"output_dir": "--dir", "concurrency": "-j", "lease_s": "--lease", "mode": "--mode"}


def exit_code(summary: Summary, mode: str) -> int:
    """The process status: in the modes that end by themselves (drain, once), jobs that failed
    for good make it non-zero, by cause (``hauler.exitcodes``), as ``get``'s failed files do."""
    if mode == "forever" or not summary.failed:
        return ExitCode.OK
    return exit_status(summary.failed_classes)


async def _serve(settings: Settings, ws: WorkerSettings, as_json: bool) -> Summary:
    # Imported here: the engine and the runner are heavy, and only this command needs them.
    from hauler.worker.serve import serve

    def banner(worker: Worker) -> None:
        if as_json:
            return
        who = worker.identity
        stdout.print(
            f"worker {who.name} (pid {who.pid}): {ws.concurrency} lanes, mode {ws.mode}, "
            f"files to {ws.output_dir}, store {redact_url(settings.store)}",
            markup=False,
        )

    return await serve(settings, ws, banner)


@app.command("worker")
def worker_command(
    ctx: typer.Context,
    *,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "-d", "--dir", "-o", "--output-dir", help="Where files go (default: ./downloads)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("-j", "--concurrency", min=1, help="Jobs at a time.")
    ] = None,
    mode: Annotated[Mode | None, typer.Option("--mode", help="When to exit by itself.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="[default: NODE-PID]")] = None,
    node: Annotated[str | None, typer.Option("--node", help="[default: host name]")] = None,
    lease: Annotated[float | None, typer.Option("--lease", help="Lease seconds.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Claim jobs from the store and download them until stopped (SIGTERM/SIGINT, `hauler stop`)."""
    settings = globals_of(ctx).settings
    flags = {
        "output_dir": output_dir,
        "concurrency": concurrency,
        "mode": mode and str(mode),
        "name": name,
        "node": node,
        "lease_s": lease,
    }
    ws = worker_settings(settings.worker, flags)
    # Checked before any job is claimed: a worker that cannot write would fail every one.
    if (problem := prepare_output_dir(ws.output_dir)) is not None:
        usage_error(problem)
    try:
        summary = asyncio.run(_serve(settings, ws, as_json))
    except StoreUnavailable as exc:
        raise store_failure(settings.store, exc) from None
    except BadRequest as exc:
        usage_error(exc.message)
    status = exit_code(summary, ws.mode)
    if as_json:
        print_json(dataclasses.asdict(summary) | {"exit_code": status})
        raise typer.Exit(status)
    stdout.print(
        f"worker exiting: {summary.done} done, {summary.failed} failed, "
        f"{summary.retried} to retry, "
        f"{summary.released} released, {human_bytes(summary.bytes_total)} transferred",
        markup=False,
    )
    raise typer.Exit(status)
