"""Validation of a control file's text: whatever is on disk, either fields that hold or None.

A control file is ours, but anything can end up on disk (a crash mid-write on a file system
without atomic rename, a user's edit, a hostile file). Nothing in it is trusted: a wrong type,
a negative position, overlapping segments or a nesting deep enough to exhaust the parser's
recursion would otherwise become an internal error or a nonsense ``Range`` request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A real control file holds a URL and a few hundred segments at most: far below these.
MAX_TEXT_CHARS = 4 * 1024 * 1024
MAX_SEGMENTS = 100_000
MAX_STRING_CHARS = 64 * 1024
# Positions are file offsets: beyond 2**62 they are not a file on any disk.
MAX_OFFSET = 1 << 62
_KEYS = frozenset({"version", "url", "size", "etag", "last_modified", "segments"})
_OPTIONAL_KEYS = frozenset({"source"})


@dataclass(frozen=True, slots=True)
class ControlFields:
    """The checked content of a control file."""

    url: str
    size: int | None
    etag: str | None
    last_modified: str | None
    segments: list[tuple[int, int, int]]
    source: str | None = None


def checked_fields(text: str, version: int) -> ControlFields | None:
    """The fields of ``text`` when it is a well-formed control file of ``version``, else None.

    Checks: a JSON object with the known keys (``source`` optional, a string); ``url`` a
    string; ``etag`` and ``last_modified`` strings or null; ``size`` an int >= 0 or null;
    ``segments`` a non-empty list of ``[start, end, pos]`` ints (never bools or floats) with
    ``start <= pos <= end``, disjoint and, when the size is known, inside ``[0, size)``; all
    bounded in length (no nesting deep enough to exhaust the parser).
    """
    if len(text) > MAX_TEXT_CHARS:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not _KEYS <= set(data) <= _KEYS | _OPTIONAL_KEYS:
        return None
    if _int(data["version"]) != version or not _is_optional_text(data.get("source")):
        return None
    url, etag, modified = data["url"], data["etag"], data["last_modified"]
    if not _is_text(url) or not _is_optional_text(etag) or not _is_optional_text(modified):
        return None
    size = data["size"]
    if size is not None and _int(size) is None:
        return None
    segments = _segments(data["segments"], size)
    if segments is None:
        return None
    return ControlFields(url, size, etag, modified, segments, data.get("source"))


def _int(value: Any) -> int | None:
    """``value`` when it is an int in ``[0, MAX_OFFSET]`` (a bool is not an int here)."""
    if type(value) is not int or not 0 <= value <= MAX_OFFSET:
        return None
    return value


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_STRING_CHARS


def _is_optional_text(value: Any) -> bool:
    return value is None or _is_text(value)


def _segments(value: Any, size: int | None) -> list[tuple[int, int, int]] | None:
    """Disjoint ``(start, end, pos)`` triples inside ``[0, size)``, sorted; None if not.

    The writer lists segments in plan order (a stolen tail comes last), so order is not checked,
    overlap is.
    """
    if not isinstance(value, list) or not 0 < len(value) <= MAX_SEGMENTS:
        return None
    triples = [_triple(item) for item in value]
    if any(triple is None for triple in triples):
        return None
    ordered = sorted(t for t in triples if t is not None)
    floor = 0
    for start, end, _ in ordered:
        if start < floor or (size is not None and end > size):
            return None
        floor = end
    return ordered


def _triple(item: Any) -> tuple[int, int, int] | None:
    if not isinstance(item, list) or len(item) != 3:
        return None
    start, end, pos = (_int(v) for v in item)
    if start is None or end is None or pos is None or not start <= pos <= end:
        return None
    return start, end, pos
