"""The proxy and account pools: ``hauler proxy …``, ``hauler account …`` and ``hauler pools``.

States are set in the store, so the whole fleet sees a ban, unban or reset at once. Nothing here
prints a secret: proxy URLs with their password masked, accounts by name with only the presence
(and count) of their cookies, token and secret headers (``hauler.poolviews``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from hauler import poolops
from hauler.cli.app import app, globals_of, usage_error
from hauler.cli.connection import say, stderr, tables, with_store
from hauler.cli.queue_views import clock_time, print_json
from hauler.clock import SystemClock
from hauler.poolops import BadResource, SpecParser
from hauler.poolviews import (
    ImportReport,
    PoolListing,
    cookie_count,
    failures_total,
    import_record,
    listing_record,
    resource_record,
    seconds_left,
    success_ratio,
)
from hauler.redact import is_secret_header, printable, redact_url
from hauler.resources import Resource, ResourceKind
from hauler.store import Store
from hauler.units import parse_duration

T = TypeVar("T")
EXIT_NOT_FOUND = 1
EXIT_BAD_LINES = 1
CLOCK = SystemClock()

proxy_app = typer.Typer(
    help="The proxy pool the whole fleet shares: add, import, list, ban, unban, reset, remove.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
account_app = typer.Typer(
    help="The account pool (cookies, headers, tokens) the whole fleet shares.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(proxy_app, name="proxy")
app.add_typer(account_app, name="account")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Sites = Annotated[
    list[str] | None,
    typer.Option("--site", help="Use it only for this host and its subdomains (repeatable)."),
]
ResourceId = Annotated[str, typer.Argument(help="Its id, as `list` shows it (p1, a3).")]
BanFor = Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")]
ImportFile = Annotated[Path, typer.Argument(help="The file to import.")]
# What differs between the two pools' commands, besides their kind: the noun of their texts.
NOUNS = {ResourceKind.PROXY: "proxy", ResourceKind.ACCOUNT: "account"}


def _store_url(ctx: typer.Context) -> str:
    return globals_of(ctx).settings.store


def _checked(make: Callable[[], T]) -> T:
    """``make()``; a ``BadResource`` is one line (secrets masked) and exit 2."""
    try:
        return make()
    except BadResource as exc:
        usage_error(exc.message)


def human_left(seconds: float | None) -> str:
    """``29m 59s``, ``2h 5m``, ``1d 3h``: how long until a resource comes back."""
    if seconds is None:
        return ""
    left = int(seconds)
    if left <= 0:
        return "now"
    for unit_s, unit, sub_s, sub in ((86400, "d", 3600, "h"), (3600, "h", 60, "m")):
        if left >= unit_s:
            return f"{left // unit_s}{unit} {left % unit_s // sub_s}{sub}"
    return f"{left // 60}m {left % 60}s" if left >= 60 else f"{left}s"


def _failures(resource: Resource) -> str:
    failures = resource.counters.failures
    if not failures:
        return "0"
    by_class = ", ".join(f"{name} {count}" for name, count in sorted(failures.items()))
    return f"{failures_total(resource.counters)} ({by_class})"


def _score(resource: Resource) -> str:
    ratio = success_ratio(resource.counters)
    return "-" if ratio is None else f"{ratio:.2f}"


def _latency(resource: Resource) -> str:
    latency_s = resource.counters.latency_s
    return "-" if latency_s is None else f"{latency_s * 1000:.0f} ms"


def _sends(resource: Resource) -> str:
    """What an account sends, secrets as ``***``: ``cookies: 3 (***), token ***, X-A: ***``."""
    spec = resource.spec
    parts = [f"cookies: {cookie_count(spec.cookies)} (***)"] if spec.cookies else []
    parts += ["token ***"] if spec.token else []
    parts += [f"{k}: {'***' if is_secret_header(k) else v}" for k, v in spec.headers.items()]
    return ", ".join(parts)


def pool_table(resources: list[Resource], kind: ResourceKind, now: float) -> Table:
    """id, state, time left, score, uses, failures by class, latency, in use, bans, and the
    masked URL (a proxy) or the name and what it sends (an account)."""
    last = ("url", "sites") if kind is ResourceKind.PROXY else ("name", "sends", "sites")
    columns = ("id", "state", "back in", "score", "uses", "failures", "latency", "in use", "bans")
    table = Table(*columns, *last, box=None)
    for resource in resources:
        spec, counters = resource.spec, resource.counters
        if kind is ResourceKind.PROXY:
            tail = [Text(printable(redact_url(spec.name)))]
        else:
            tail = [Text(printable(spec.name)), Text(printable(_sends(resource)))]
        table.add_row(
            resource.id,
            resource.state.value,
            human_left(seconds_left(resource, now)),
            _score(resource),
            str(counters.uses),
            _failures(resource),
            _latency(resource),
            str(counters.in_use),
            str(counters.bans),
            *tail,
            Text(printable(" ".join(spec.sites))),
        )
    return table


def _print_listing(listing: PoolListing, kind: ResourceKind) -> None:
    resources = listing.of_kind(kind)
    if resources:
        tables.print(pool_table(resources, kind, listing.at))
    else:
        say(f"no {NOUNS[kind]} in the pool")


async def _and_wake(store: Store, change: Awaitable[Resource | None]) -> Resource | None:
    """``change`` (an unban, a reset), then the jobs that waited for a resource due now."""
    changed = await change
    if changed is not None:
        await poolops.wake_waiting(store)
    return changed


def _not_found(kind: ResourceKind, resource_id: str) -> typer.Exit:
    stderr.print(f"hauler: no {NOUNS[kind]} {printable(resource_id)}", markup=False)
    return typer.Exit(EXIT_NOT_FOUND)


def _print_added(added: list[Resource], as_json: bool) -> None:
    if as_json:
        now = CLOCK.now()
        print_json({"added": [resource_record(r, now) for r in added]})
        return
    for resource in added:
        shown = resource.spec.name
        if resource.spec.kind is ResourceKind.PROXY:
            shown = redact_url(shown)
        say(f"added {resource.id} {printable(shown)}")


def _import(ctx: typer.Context, path: Path, parse: SpecParser, as_json: bool) -> None:
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as handle:
            specs, bad = poolops.parse_lines(handle, parse)
    except OSError as exc:
        usage_error(f"cannot read {printable(str(path))}: {exc.strerror or exc}")
    report: ImportReport = with_store(
        _store_url(ctx), lambda store: poolops.import_specs(store, specs, bad, CLOCK)
    )
    for line in report.bad:
        stderr.print(f"line {line.line_no}: {line.reason}", markup=False)
    if as_json:
        print_json(import_record(report))
    else:
        refused = f", {len(report.bad)} bad lines" if report.bad else ""
        say(f"added {len(report.added)}{refused}")
    if report.bad:
        raise typer.Exit(EXIT_BAD_LINES)


@dataclass(frozen=True, slots=True)
class PoolCommands:
    """``list``, ``ban``, ``unban``, ``reset`` and ``remove`` of the pool of ``kind``."""

    kind: ResourceKind

    def register(self, group: typer.Typer) -> None:
        """Add the commands to ``group`` (``hauler proxy``, ``account``), in help's order."""
        noun = NOUNS[self.kind]
        one = f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"
        commands = (
            (
                "list",
                f"Every {noun}: state, time left before it comes back, score, "
                "uses, failures by class, latency, in use, bans.",
                self.list_command,
            ),
            ("ban", f"Ban {one} for the whole fleet (1h unless --for).", self.ban_command),
            ("unban", f"Make {one} active again at once (counters kept).", self.unban_command),
            ("reset", f"Zero {one}'s counters and history; make it active.", self.reset_command),
            ("remove", f"Forget {one} and its history.", self.remove_command),
        )
        for name, help_text, command in commands:
            group.command(name, help=help_text)(command)

    def list_command(self, ctx: typer.Context, *, as_json: JsonFlag = False) -> None:
        listing = with_store(_store_url(ctx), lambda s: poolops.list_pools(s, self.kind, CLOCK))
        if as_json:
            print_json([resource_record(r, listing.at) for r in listing.resources])
        else:
            _print_listing(listing, self.kind)

    def ban_command(
        self,
        ctx: typer.Context,
        resource_id: ResourceId,
        *,
        for_text: BanFor = "1h",
        as_json: JsonFlag = False,
    ) -> None:
        for_s = _duration(for_text)
        found = with_store(
            _store_url(ctx), lambda s: poolops.ban(s, self.kind, resource_id, for_s, CLOCK)
        )
        self._show(found, resource_id, "banned", as_json)

    def unban_command(
        self, ctx: typer.Context, resource_id: ResourceId, *, as_json: JsonFlag = False
    ) -> None:
        found = with_store(
            _store_url(ctx), lambda s: _and_wake(s, poolops.unban(s, self.kind, resource_id))
        )
        self._show(found, resource_id, "unbanned", as_json)

    def reset_command(
        self, ctx: typer.Context, resource_id: ResourceId, *, as_json: JsonFlag = False
    ) -> None:
        found = with_store(
            _store_url(ctx), lambda s: _and_wake(s, poolops.reset(s, self.kind, resource_id))
        )
        self._show(found, resource_id, "reset", as_json)

    def remove_command(
        self, ctx: typer.Context, resource_id: ResourceId, *, as_json: JsonFlag = False
    ) -> None:
        removed = with_store(_store_url(ctx), lambda s: poolops.remove(s, self.kind, resource_id))
        if not removed:
            raise _not_found(self.kind, resource_id)
        if as_json:
            print_json({"removed": resource_id})
        else:
            say(f"removed {resource_id}")

    def _show(self, found: Resource | None, resource_id: str, verb: str, as_json: bool) -> None:
        """What a ban, unban or reset left (``banned p1: banned for …``); exit 1 without it."""
        if found is None:
            raise _not_found(self.kind, resource_id)
        if as_json:
            print_json(resource_record(found, CLOCK.now()))
        else:
            say(f"{verb} {found.id}: {found.state.value}{_until(found)}")


def _until(resource: Resource) -> str:
    if resource.until is None:
        return ""
    left = human_left(seconds_left(resource, CLOCK.now()))
    return f" for {left} (until {clock_time(resource.until)} UTC)"


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--for'") from None
    if seconds <= 0:
        raise typer.BadParameter("a ban lasts more than 0 seconds", param_hint="'--for'")
    return seconds


@proxy_app.command("add")
def proxy_add_command(
    ctx: typer.Context,
    urls: Annotated[
        list[str],
        typer.Argument(
            help="scheme://[user:password@]host:port, scheme one of http, https, socks5, socks5h."
        ),
    ],
    *,
    weight: Annotated[float, typer.Option("--weight", help="Share under `weighted`.")] = 1.0,
    region: Annotated[str | None, typer.Option("--region", help="A job may pin one.")] = None,
    sites: Sites = None,
    as_json: JsonFlag = False,
) -> None:
    """Add proxies (or update one already in the pool: same URL)."""
    specs = _checked(lambda: [poolops.proxy_spec(url, weight, region, sites or ()) for url in urls])
    added = with_store(_store_url(ctx), lambda store: poolops.add(store, specs))
    _print_added(added, as_json)


@proxy_app.command("import")
def proxy_import_command(
    ctx: typer.Context, path: ImportFile, *, as_json: JsonFlag = False
) -> None:
    """Add the proxies of a file: one URL a line, or JSON lines with url, weight, region, sites.
    Bad lines are reported by number (exit 1); the rest are added."""
    _import(ctx, path, poolops.proxy_line, as_json)


@account_app.command("add")
def account_add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The account's name (shown in listings).")],
    *,
    cookies: Annotated[
        Path | None, typer.Option("--cookies", help="A Netscape cookies.txt file.")
    ] = None,
    headers: Annotated[
        list[str] | None, typer.Option("--header", help="'Name: value' to send (repeatable).")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="Sent as Authorization: Bearer.")
    ] = None,
    sites: Sites = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an account (or update the one of that name): cookies, headers and/or a token."""
    spec = _checked(
        lambda: poolops.account_spec(
            name,
            poolops.read_cookies(cookies) if cookies is not None else None,
            dict(poolops.parse_header(h) for h in headers or ()),
            token,
            sites or (),
        )
    )
    added = with_store(_store_url(ctx), lambda store: poolops.add(store, [spec]))
    _print_added(added, as_json)


@account_app.command("import")
def account_import_command(
    ctx: typer.Context, path: ImportFile, *, as_json: JsonFlag = False
) -> None:
    """Add the accounts of a JSON lines file: name, cookies (a cookies file's path, relative
    to the imported file, or its text), headers, token, sites. Bad lines are reported by
    number (exit 1); the rest are added."""
    _import(ctx, path, poolops.account_parser(path.parent), as_json)


# After add and import, which help lists first.
PoolCommands(ResourceKind.PROXY).register(proxy_app)
PoolCommands(ResourceKind.ACCOUNT).register(account_app)


@app.command("pools")
def pools_command(ctx: typer.Context, *, as_json: JsonFlag = False) -> None:
    """Both pools: the proxies, then the accounts."""
    listing = with_store(_store_url(ctx), lambda store: poolops.list_pools(store, None, CLOCK))
    if as_json:
        print_json(listing_record(listing))
        return
    say("proxies")
    _print_listing(listing, ResourceKind.PROXY)
    say("accounts")
    _print_listing(listing, ResourceKind.ACCOUNT)
