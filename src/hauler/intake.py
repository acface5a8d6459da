"""Reading job specs from text: one URL a line, or JSON lines with per-job options.

Input is streamed in batches, so a file of ten million lines never sits in memory. Lines that
cannot become a job are reported with their line number, never silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hauler.models import JobSpec, validate_url
from hauler.redact import printable

__all__ = [
    "BadLine",
    "Batch",
    "check_url",
    "parse_line",
    "printable_line",
    "read_batches",
    "validate_url",
]

BATCH_LINES = 1000
# Lone surrogates: bytes that were not UTF-8, read with errors="surrogateescape".
_SURROGATE = re.compile(r"[\ud800-\udfff]")
NOT_UTF8 = "not valid UTF-8"


@dataclass(frozen=True, slots=True)
class BadLine:
    """An input line that is not a job, and why."""

    line_no: int
    text: str
    reason: str


@dataclass(slots=True)
class Batch:
    """Up to ``BATCH_LINES`` lines of input: the specs they hold and the lines that were bad."""

    specs: list[JobSpec] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def check_url(url: str) -> str:
    """``url`` stripped, when it is a usable URL (``hauler.models.validate_url``)."""
    return validate_url(url)


def printable_line(text: str) -> str:
    """An input line as it can be shown: bytes that were not UTF-8 and control characters as
    ``\\xNN``."""
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return printable(text)


def parse_line(text: str, defaults: Mapping[str, Any]) -> JobSpec | None:
    """The job on one line: None for a blank line or a ``#`` comment; ``ValueError`` if bad.

    ``defaults`` (priority, collection, ...) apply to plain URLs; a JSON line carries its own.
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if not stripped.isascii() and _SURROGATE.search(stripped) is not None:
        raise ValueError(NOT_UTF8)
    if stripped.startswith("{"):
        return _json_spec(stripped)
    return JobSpec(url=validate_url(stripped), **defaults)


def _json_spec(text: str) -> JobSpec:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(fields, dict) or "url" not in fields:
        raise ValueError('a JSON line must be an object with a "url"')
    try:
        return JobSpec.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from exc


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "line"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    # A validator's ValueError reads as its own message, without pydantic's "Value error, ".
    cause = first.get("ctx", {}).get("error")
    message = str(cause) if isinstance(cause, ValueError) else first["msg"]
    return f"{where}: {message}{more}"


def read_batches(
    lines: Iterable[str], defaults: Mapping[str, Any], batch_lines: int = BATCH_LINES
) -> Iterator[Batch]:
    """Parse ``lines`` lazily into batches of at most ``batch_lines`` input lines each."""
    batch = Batch()
    for line_no, text in enumerate(lines, start=1):
        try:
            spec = parse_line(text, defaults)
        except ValueError as exc:
            batch.bad.append(BadLine(line_no, printable_line(text.strip()[:200]), str(exc)))
        else:
            if spec is not None:
                batch.specs.append(spec)
        if line_no % batch_lines == 0:
            yield batch
            batch = Batch()
    if batch.specs or batch.bad:
        yield batch
