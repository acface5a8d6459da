"""The pool operations the CLI composes and the HTTP API will call: add, import, list, ban,
unban, reset and remove proxies and accounts, over the store's ``ResourcePools`` role.

Each takes the role (and a ``Clock`` for "now") and returns plain records (``hauler.poolviews``);
printing them is the caller's part. A state set here is set in the store, so the whole fleet
sees it at once (the store's ``pools_version`` moves and waiting jobs look again).

What the user gives is checked here: ``BadResource`` says what to fix, and never repeats a
secret (a proxy URL is shown with its password masked, an account's line only by number).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from hauler.clock import Clock, SystemClock
from hauler.cookies import CookieFileError, parse_cookies
from hauler.models import JobState
from hauler.poolviews import BadPoolLine, ImportReport, PoolListing
from hauler.redact import MASK, printable, redact_url
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState
from hauler.store import JobFilter, JobStore, ResourcePools

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
DEFAULT_BAN_S = 3600.0
_SYSTEM_CLOCK = SystemClock()
_HEADER_NAME_BAD = set(' \t:\r\n()<>@,;\\"/[]?={}')


class BadResource(ValueError):
    """A proxy URL, account option or import line the user must fix (the message is safe to
    print: secrets masked)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SpecParser(Protocol):
    """Turns one line of an import file into a spec, or raises ``BadResource``."""

    def __call__(self, text: str) -> ResourceSpec: ...


def masked_proxy_text(text: str) -> str:
    """``text`` (a proxy URL, maybe malformed) safe to print: any userinfo masked, even where
    the URL is too broken to parse (``user:pw@host:1`` has no scheme to split it on)."""
    masked = redact_url(text)
    if masked == text and "@" in text:
        scheme, sep, rest = text.rpartition("://")
        masked = f"{scheme}{sep}{MASK}@{rest.rpartition('@')[2]}"
    return printable(masked)


def check_proxy_url(url: str) -> str:
    """``url`` as stored (spaces and a trailing ``/`` dropped) when it is a proxy hauler can use:
    ``scheme://[user:password@]host:port`` with a scheme of ``PROXY_SCHEMES``."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() not in PROXY_SCHEMES:
        problem = f"scheme must be one of {', '.join(PROXY_SCHEMES)}"
    elif not parts.hostname or port is None:
        problem = "a proxy needs a host and a port"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problem = "a proxy URL has no path, query or fragment"
    else:
        return text.removesuffix("/")
    raise BadResource(f"bad proxy URL {masked_proxy_text(text)}: {problem}")


def check_sites(sites: Iterable[str]) -> tuple[str, ...]:
    """Host names as a resource's ``sites`` (lower-case, no leading dot), duplicates dropped."""
    hosts: list[str] = []
    for site in sites:
        host = str(site).strip().lstrip(".").lower()
        if not host or any(ch in host for ch in "/: \t"):
            raise BadResource(f"bad site {printable(str(site))!r}: expected a host name")
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _weight(value: object) -> float:
    try:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TypeError  # a JSON list, object, true or null is no weight
        weight = float(value)
    except (TypeError, ValueError):
        raise BadResource(f"bad weight {printable(str(value))!r}: expected a number") from None
    if not weight > 0:
        raise BadResource(f"bad weight {weight}: must be above 0")
    return weight


def proxy_spec(
    url: str, weight: object = 1.0, region: str | None = None, sites: Iterable[str] = ()
) -> ResourceSpec:
    """A proxy to add; ``BadResource`` for a URL, weight or site hauler cannot use."""
    return ResourceSpec(
        kind=ResourceKind.PROXY,
        name=check_proxy_url(url),
        weight=_weight(weight),
        region=region or None,
        sites=check_sites(sites),
    )


def parse_header(text: str) -> tuple[str, str]:
    """``'K: V'`` as (K, V); ``BadResource`` naming the header (never its value)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(ch in _HEADER_NAME_BAD for ch in name):
        shown = printable(name[:40]) if sep else "(no ':')"
        raise BadResource(f"bad header {shown!r}: expected 'Name: value'")
    return name, value.strip()


def read_cookies(path: Path) -> str:
    """The Netscape cookies text at ``path``, checked; ``BadResource`` when unreadable, invalid
    or holding no cookie (the message names the file and line, never a cookie's value)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadResource(f"cannot read cookies file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadResource(f"cannot read cookies file {path}: not UTF-8 text") from None
    return check_cookies(text, str(path))


def check_cookies(text: str, source: str) -> str:
    """``text`` when it is Netscape cookies text with at least one cookie."""
    try:
        cookies = parse_cookies(text.splitlines(), source)
    except CookieFileError as exc:
        raise BadResource(f"bad cookies: {exc}") from None
    if not cookies:
        raise BadResource(f"bad cookies: {source} holds no cookie (Netscape cookies.txt)")
    return text


def account_spec(
    name: str,
    cookies: str | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    sites: Iterable[str] = (),
) -> ResourceSpec:
    """An account to add: a name and at least one of cookies (checked text), headers, token."""
    if not name.strip():
        raise BadResource("an account needs a name")
    if not (cookies or headers or token):
        raise BadResource(f"account {name.strip()!r} needs --cookies, --header or --token")
    return ResourceSpec(
        kind=ResourceKind.ACCOUNT,
        name=name.strip(),
        sites=check_sites(sites),
        cookies=cookies or None,
        headers=dict(headers or {}),
        token=token or None,
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise BadResource("not valid JSON") from None
    if not isinstance(data, dict):
        raise BadResource("a JSON line must be an object")
    return data


def _text_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadResource(f"{key!r} must be a list of strings")
    return value


def proxy_line(text: str) -> ResourceSpec:
    """A proxy import line: a URL, or a JSON object with url, weight, region, sites."""
    if not text.startswith("{"):
        return proxy_spec(text)
    data = _json_object(text)
    url = data.get("url")
    if not isinstance(url, str):
        raise BadResource("'url' must be a string")
    region = data.get("region")
    if region is not None and not isinstance(region, str):
        raise BadResource("'region' must be a string")
    return proxy_spec(url, data.get("weight", 1.0), region, _text_list(data, "sites"))


def account_parser(base_dir: Path) -> SpecParser:
    """An account import line's parser: a JSON object with name, cookies (a cookies file's path,
    relative to ``base_dir``, or the cookies text itself), headers, token, sites."""

    def parse(text: str) -> ResourceSpec:
        data = _json_object(text)
        name, token = data.get("name"), data.get("token")
        if not isinstance(name, str):
            raise BadResource("'name' must be a string")
        if token is not None and not isinstance(token, str):
            raise BadResource("'token' must be a string")
        return account_spec(
            name,
            _line_cookies(data.get("cookies"), base_dir),
            _line_headers(data.get("headers")),
            token,
            _text_list(data, "sites"),
        )

    return parse


def _line_cookies(value: object, base_dir: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadResource("'cookies' must be a file path or the cookies text")
    if "\t" in value or "\n" in value:  # Netscape text: fields are tab-separated
        return check_cookies(value, "'cookies'")
    return read_cookies(base_dir / Path(value).expanduser())


def _line_headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return dict(parse_header(v) for v in value)
    raise BadResource("'headers' must be an object of strings or a list of 'Name: value'")


def parse_lines(
    lines: Iterable[str], parse: SpecParser
) -> tuple[list[ResourceSpec], list[BadPoolLine]]:
    """The specs of an import file's lines and the bad lines by number; blank lines and
    ``#`` comments are skipped."""
    specs: list[ResourceSpec] = []
    bad: list[BadPoolLine] = []
    for line_no, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            specs.append(parse(text))
        except BadResource as exc:
            bad.append(BadPoolLine(line_no, exc.message))
    return specs, bad


async def add(pools: ResourcePools, specs: Sequence[ResourceSpec]) -> list[Resource]:
    """Add (or update, by kind and name) the resources of ``specs`` in one batch; them as
    stored, in order, each once."""
    if not specs:
        return []
    ids = list(dict.fromkeys(await pools.add_resources(specs)))
    stored = {r.id: r for r in await pools.list_resources()}
    return [stored[i] for i in ids if i in stored]


async def import_specs(
    pools: ResourcePools,
    specs: Sequence[ResourceSpec],
    bad: Sequence[BadPoolLine],
    clock: Clock = _SYSTEM_CLOCK,
) -> ImportReport:
    """Add the good lines' specs; the report of what was added and what was refused."""
    added = await add(pools, specs)
    return ImportReport(tuple(added), tuple(bad), clock.now())


async def list_pools(
    pools: ResourcePools, kind: ResourceKind | None = None, clock: Clock = _SYSTEM_CLOCK
) -> PoolListing:
    """The resources of ``kind`` (both pools when None), in the order they were added."""
    return PoolListing(tuple(await pools.list_resources(kind)), clock.now())


async def find(pools: ResourcePools, kind: ResourceKind, resource_id: str) -> Resource | None:
    """The resource ``resource_id`` when it is in the ``kind`` pool, else None."""
    resource = await pools.get_resource(resource_id)
    return resource if resource is not None and resource.spec.kind is kind else None


async def ban(
    pools: ResourcePools,
    kind: ResourceKind,
    resource_id: str,
    for_s: float = DEFAULT_BAN_S,
    clock: Clock = _SYSTEM_CLOCK,
) -> Resource | None:
    """Ban a resource by hand until ``for_s`` from now; it as stored, None when not there."""
    if not for_s > 0:
        raise BadResource("a ban lasts more than 0 seconds")
    until = clock.now() + for_s
    return await _set_state(pools, kind, resource_id, ResourceState.BANNED, until)


async def unban(pools: ResourcePools, kind: ResourceKind, resource_id: str) -> Resource | None:
    """Make a resource active at once (counters kept); it as stored, None when not there."""
    return await _set_state(pools, kind, resource_id, ResourceState.ACTIVE, None)


async def _set_state(
    pools: ResourcePools,
    kind: ResourceKind,
    resource_id: str,
    state: ResourceState,
    until: float | None,
) -> Resource | None:
    if await find(pools, kind, resource_id) is None:
        return None
    if not await pools.set_resource_state(resource_id, state, until):
        return None  # removed in between
    return await pools.get_resource(resource_id)


async def reset(pools: ResourcePools, kind: ResourceKind, resource_id: str) -> Resource | None:
    """Zero a resource's counters and history and make it active; None when not there."""
    if await find(pools, kind, resource_id) is None:
        return None
    if not await pools.reset_resource(resource_id):
        return None
    return await pools.get_resource(resource_id)


async def wake_waiting(jobs: JobStore) -> int:
    """Jobs waiting for a usable proxy or account (retrying, class ``no_resource``) due now:
    after an unban or a reset they are claimed again at once, not at the end of their wait."""
    return await jobs.requeue(JobFilter(state=JobState.RETRYING, reason="no_resource"))


async def remove(pools: ResourcePools, kind: ResourceKind, resource_id: str) -> bool:
    """Forget a resource and its history; False when it is not in the ``kind`` pool."""
    if await find(pools, kind, resource_id) is None:
        return False
    return await pools.remove_resource(resource_id)
