"""Running a command against the job store: open, run, close; a dead store is one line, exit 3."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from hauler.errors import BadRequest, StoreUnavailable
from hauler.redact import redact_url
from hauler.store import Store, open_store

T = TypeVar("T")
EXIT_STORE_UNAVAILABLE = 3
EXIT_USAGE = 2

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
# Piped (to grep, a file), a table is as wide as its rows: rich would cut it to 80 columns.
PIPED_WIDTH = 1000
tables = Console(highlight=False, soft_wrap=True)
if not tables.is_terminal:
    tables.width = PIPED_WIDTH


def say(line: str) -> None:
    """One line on stdout, as given (no rich markup read in it)."""
    tables.print(line, markup=False)


def store_failure(url: str, exc: StoreUnavailable) -> typer.Exit:
    """Print the one-line explanation of an unreachable store; the exit to raise."""
    message = exc.message
    if "--store" not in message:
        message += f" (store {redact_url(url)}: check --store / HAULER_STORE)"
    stderr.print(f"hauler: {message}", markup=False)
    return typer.Exit(EXIT_STORE_UNAVAILABLE)


async def _open_run_close(url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    store = await open_store(url)
    try:
        return await action(store)
    finally:
        await store.close()


def with_store(url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``action(store)`` on a store opened from ``url``; map store errors to exits."""
    try:
        return asyncio.run(_open_run_close(url, action))
    except StoreUnavailable as exc:
        raise store_failure(url, exc) from None
    except BadRequest as exc:
        stderr.print(f"hauler: {exc.message}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except ValueError as exc:  # the store refused an argument (e.g. requeue of running jobs)
        stderr.print(f"hauler: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
