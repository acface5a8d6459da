"""``hauler get``'s options turned into what the run needs: where files go, what a taken name
means, the headers and cookies each request carries, and the pool pins ``get`` and ``add``
share (``--region``, ``--account``). Pure: no printing, no network.

Each function raises ``OptionError`` naming the option, which ``get`` shows as a usage error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from hauler.cookies import Cookie, cookie_header
from hauler.models import JobSpec, OnExisting, PoolPins

# RFC 9110 token characters: what a header name may hold.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00\r\n]")

Region = Annotated[
    str | None,
    typer.Option("--region", help="Only proxies of this region (hauler proxy add --region)."),
]
Account = Annotated[
    str | None,
    typer.Option("--account", help="Only this account (its name or id); the job waits for it."),
]


class OptionError(ValueError):
    """A bad option value: ``option`` names it, the message says what is wrong."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a run's files go: the directory, and the name of its single file if given."""

    output_dir: Path
    filename: str | None = None


def destination(directory: Path | None, output: str | None, urls: int) -> Destination:
    """Read ``-d DIR`` and ``-o NAME`` as aria2c and curl do, and ``-o`` as ``cp`` reads its
    target: a NAME that is an existing directory or ends in ``/`` is the directory (so
    ``hauler get -o downloads URL`` of earlier versions still works). ``-o`` is relative to
    ``-d``; a file name with several URLs is an error."""
    base = directory if directory is not None else Path(".")
    if output is None:
        return Destination(base)
    if not output.strip():
        raise OptionError("-o", "give a file name (or a directory ending in /)")
    target = base / output
    if output.endswith("/") or target.is_dir():
        return Destination(target)
    if urls != 1:
        raise OptionError(
            "-o",
            f"names one file but there are {urls} URLs; give a directory (-d DIR, or -o DIR/) "
            'or per-file names in a JSON lines input file ({"url": ..., "output": ...})',
        )
    return Destination(base, output)


def on_existing(
    *, overwrite: bool, allow_overwrite: bool, no_clobber: bool, resume: bool
) -> OnExisting:
    """The policy for a final name that is taken: ``--force``/``--allow-overwrite``, ``-n``,
    ``-c``, or none of them (rename, aria2c's default). Two different ones are an error."""
    chosen = {
        "--force": OnExisting.OVERWRITE if overwrite else None,
        "--allow-overwrite": OnExisting.OVERWRITE if allow_overwrite else None,
        "--no-clobber": OnExisting.SKIP if no_clobber else None,
        "--continue": OnExisting.CONTINUE if resume else None,
    }
    given = {name: policy for name, policy in chosen.items() if policy is not None}
    if len(set(given.values())) > 1:
        first, second = list(given)[:2]
        raise OptionError(first, f"{first} and {second} cannot be combined")
    return next(iter(given.values()), OnExisting.RENAME)


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as (name, value); ``ValueError`` saying what is wrong."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise ValueError("write a header as 'Name: value'")
    if _TOKEN.match(name) is None:
        raise ValueError(f"{name[:40]!r} is not a header name (letters, digits, -, _ ...)")
    if _FORBIDDEN_IN_VALUE.search(value):
        raise ValueError(f"the value of {name} holds a line break or NUL")
    return name, value


def parse_headers(texts: Iterable[str], option: str = "-H") -> dict[str, str]:
    """Every ``-H`` header in order (a later one of the same name wins); ``OptionError``."""
    headers: dict[str, str] = {}
    for text in texts:
        try:
            name, value = parse_header(text)
        except ValueError as exc:
            raise OptionError(option, str(exc)) from None
        headers = merge_headers(headers, {name: value})
    return headers


def merge_headers(base: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """``base`` with ``own`` over it, names compared without case (HTTP's rule)."""
    lowered = {name.lower() for name in own}
    merged = {name: value for name, value in base.items() if name.lower() not in lowered}
    return merged | dict(own)


def with_request_headers(
    specs: Sequence[JobSpec],
    headers: Mapping[str, str],
    cookies: Sequence[Cookie] = (),
    now: float = 0.0,
) -> list[JobSpec]:
    """Each spec with the run's ``headers`` under its own (a JSON line's headers win) and a
    Cookie header of the ``cookies`` that match its URL (after any Cookie it already has)."""
    if not headers and not cookies:
        return list(specs)
    return [_with_headers(spec, headers, cookies, now) for spec in specs]


def _with_headers(
    spec: JobSpec, headers: Mapping[str, str], cookies: Sequence[Cookie], now: float
) -> JobSpec:
    merged = merge_headers(headers, spec.headers)
    jar = cookie_header(cookies, spec.url, now) if cookies else None
    if jar is not None:
        name = next((n for n in merged if n.lower() == "cookie"), "Cookie")
        merged[name] = f"{merged[name]}; {jar}" if merged.get(name) else jar
    if merged == spec.headers:
        return spec
    return spec.model_copy(update={"headers": merged})


def with_filename(specs: Sequence[JobSpec], filename: str | None) -> list[JobSpec]:
    """The single spec named ``filename`` (``-o NAME``), unless its JSON line names it."""
    if filename is None:
        return list(specs)
    return [s if s.output else s.model_copy(update={"output": filename}) for s in specs]


def pool_pins(region: str | None, account: str | None) -> PoolPins | None:
    """The pins of ``--region`` and ``--account``, None when neither is given."""
    given = {"--region": region, "--account": account}
    for option, value in given.items():
        if value is not None and not value.strip():
            raise OptionError(option, "give a name (it cannot be empty)")
    if region is None and account is None:
        return None
    return PoolPins(region=_stripped(region), account=_stripped(account))


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def with_pins(specs: Sequence[JobSpec], pins: PoolPins | None) -> list[JobSpec]:
    """Each spec pinned to ``pins``, unless its JSON line carries pins of its own."""
    if pins is None:
        return list(specs)
    return [s if s.pools is not None else s.model_copy(update={"pools": pins}) for s in specs]
