"""Per-host budgets for the whole fleet: ``hauler host limit``, ``hauler host list`` and
``hauler host remove``.

Limits are set in the store, so every worker paces its requests to the host by them at once
(the store's ``hosts_version`` moves). The records and the cells are ``hauler.hostviews``'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from hauler import hostops
from hauler.cli.app import app, globals_of, usage_error
from hauler.cli.connection import say, stderr, tables, with_store
from hauler.cli.queue_views import print_json
from hauler.clock import SystemClock
from hauler.hostops import BadLimit, LimitOptions
from hauler.hostviews import (
    HOST_COLUMNS,
    HostListing,
    host_record,
    host_row,
    in_force_text,
    listing_record,
)

T = TypeVar("T")
EXIT_NOT_FOUND = 1
CLOCK = SystemClock()

host_app = typer.Typer(
    help="Per-host budgets the whole fleet shares: request rate, connections, cooldowns.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(host_app, name="host")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Host = Annotated[str, typer.Argument(help="A host name (example.com also governs its subdomains).")]
Rate = Annotated[
    str | None, typer.Option("--rate", help="Requests over the fleet: 5/s, 0.5/s, 30/min, 100/h.")
]
Burst = Annotated[
    str | None, typer.Option("--burst", help="Requests that may go at once above --rate (1).")
]
Connections = Annotated[
    str | None, typer.Option("--connections", help="Connections open at once, fleet-wide.")
]
ProxyRate = Annotated[
    str | None, typer.Option("--proxy-rate", help="The same as --rate, for each proxy.")
]
ProxyConnections = Annotated[
    str | None, typer.Option("--proxy-connections", help="Connections open at once per proxy.")
]


def _store_url(ctx: typer.Context) -> str:
    return globals_of(ctx).settings.store


def _checked(make: Callable[[], T]) -> T:
    """``make()``; a ``BadLimit`` is one line and exit 2."""
    try:
        return make()
    except BadLimit as exc:
        usage_error(exc.message)


def hosts_table(listing: HostListing) -> Table:
    """``HOST_COLUMNS``, one row a host."""
    table = Table(*HOST_COLUMNS, box=None)
    for budget in listing.budgets:
        table.add_row(*(Text(cell) for cell in host_row(budget, listing.at)))
    return table


@host_app.command("limit")
def limit_command(
    ctx: typer.Context,
    host: Host,
    *,
    rate: Rate = None,
    burst: Burst = None,
    connections: Connections = None,
    proxy_rate: ProxyRate = None,
    proxy_connections: ProxyConnections = None,
    as_json: JsonFlag = False,
) -> None:
    """Set (replace) a host's limit for the whole fleet; give at least one of the limits.
    The rate in force starts again at --rate; cooldowns and counters are kept."""
    options = LimitOptions(rate, burst, connections, proxy_rate, proxy_connections)
    limit = _checked(lambda: hostops.host_limit(host, options))
    budget = with_store(_store_url(ctx), lambda store: hostops.set_limit(store, limit, CLOCK))
    if as_json:
        print_json(host_record(budget, CLOCK.now()))
    else:
        say(f"{budget.host}: {in_force_text(budget)}")


@host_app.command("list")
def list_command(ctx: typer.Context, *, as_json: JsonFlag = False) -> None:
    """Every host with a limit or a cooldown: rate limit and rate now, burst, connections in
    use, per-proxy limits, cooldown left (the host's; proxies cooling and the longest left),
    requests and throttled answers."""
    listing = with_store(_store_url(ctx), lambda store: hostops.list_hosts(store, CLOCK))
    if as_json:
        print_json(listing_record(listing))
    elif listing.budgets:
        tables.print(hosts_table(listing))
    else:
        say("no host has a limit or a cooldown")


@host_app.command("remove")
def remove_command(ctx: typer.Context, host: Host, *, as_json: JsonFlag = False) -> None:
    """Forget a host: its limit, cooldowns and counters."""
    key = _checked(lambda: hostops.checked_host(host))
    removed = with_store(_store_url(ctx), lambda store: hostops.remove(store, key))
    if not removed:
        stderr.print(f"hauler: no limit or cooldown for {key} in the store", markup=False)
        raise typer.Exit(EXIT_NOT_FOUND)
    if as_json:
        print_json({"removed": key})
    else:
        say(f"removed {key}")
