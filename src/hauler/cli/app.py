"""The typer application and its global options (``--store``, logging)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import typer

from hauler.config import Settings, load_settings

app = typer.Typer(
    name="hauler",
    help="A distributed download engine: fast segmented downloads, a job queue, a worker fleet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class Globals:
    """What the global options resolved to, handed to every command through typer's context."""

    settings: Settings


@app.callback()
def main_options(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None,
        "--store",
        envvar="HAULER_STORE",
        help="Job store URL: sqlite:///path.db (default: in your data directory) or redis://host:port/db.",
    ),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING, ERROR."),
    log_format: str = typer.Option("text", "--log-format", help="text or json (JSON lines)."),
) -> None:
    """hauler: download URLs by the million, fast and without losing any."""
    settings = load_settings(store=store, log_level=log_level, log_format=log_format)
    from hauler.cli.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    ctx.obj = Globals(settings=settings)


def globals_of(ctx: typer.Context) -> Globals:
    """The resolved global options of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):
        obj = Globals(settings=load_settings())
        ctx.find_root().obj = obj
    return obj


logger = logging.getLogger("hauler")
