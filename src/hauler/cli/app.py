"""The typer application and its global options (``--store``, logging, ``--version``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NoReturn

import typer

from hauler import __version__
from hauler.config import ConfigError, Settings, load_settings

app = typer.Typer(
    name="hauler",
    help="A distributed download engine: fast segmented downloads, a job queue, a worker fleet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown: a docstring's wrapped lines are one paragraph (typer 0.29 keeps them in rich mode).
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
EXIT_USAGE = 2


@dataclass
class Globals:
    """What the global options resolved to, handed to every command through typer's context."""

    settings: Settings


def usage_error(message: str) -> NoReturn:
    """Print ``hauler: MESSAGE`` (one line, on stderr) and exit 2."""
    typer.echo(f"hauler: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def settings_or_exit(
    store: str | None = None, log_level: str | None = None, log_format: str | None = None
) -> Settings:
    """The settings; a configuration mistake is one line and exit 2, never a traceback."""
    try:
        return load_settings(store=store, log_level=log_level, log_format=log_format)
    except ConfigError as exc:
        usage_error(str(exc))


def _print_version(is_asked: bool) -> None:
    if is_asked:
        typer.echo(f"hauler {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None,
        "--store",
        envvar="HAULER_STORE",
        help="Job store URL: sqlite:////abs/path/state.db (four slashes for an absolute path; "
        "default: in your data directory), sqlite:///relative.db, or redis://host:port/db.",
    ),
    log_level: str | None = typer.Option(
        None, "--log-level", help="DEBUG, INFO, WARNING (the default), ERROR or CRITICAL."
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", help="text (the default) or json (JSON lines)."
    ),
    version: bool = typer.Option(
        False,
        "-V",
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print hauler's version and exit.",
    ),
) -> None:
    """hauler: download URLs by the million, fast and without losing any.

    Global options may also follow the command name (hauler get --log-level INFO URL).
    """
    settings = settings_or_exit(store=store, log_level=log_level, log_format=log_format)
    from hauler.cli.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    ctx.obj = Globals(settings=settings)


def globals_of(ctx: typer.Context) -> Globals:
    """The resolved global options of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):
        obj = Globals(settings=settings_or_exit())
        ctx.find_root().obj = obj
    return obj


logger = logging.getLogger("hauler")
