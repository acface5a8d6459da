"""Parsing of human-written sizes, rates and durations (``4M``, ``512KiB/s``, ``90m``)."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*(?:/s)?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """Parse ``1048576``, ``512K``, ``4M``, ``1.5GiB`` or ``4MB/s`` into bytes (binary multiples).

    Like aria2c and curl, ``K``/``M``/``G`` mean 1024-based multiples.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 500K, 4M, 1.5G)")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** _POWERS[unit.lower()])


def parse_duration(text: str) -> float:
    """Parse ``90``, ``30s``, ``15m``, ``2h``, ``1d`` or ``1h30m`` into seconds."""
    stripped = text.strip()
    parts = _DURATION.findall(stripped)
    if not stripped or "".join(n + u for n, u in parts) != stripped.replace(" ", ""):
        raise ValueError(f"not a duration: {text!r} (examples: 30s, 15m, 2h, 1d)")
    return sum(float(n) * _SECONDS[u.lower()] for n, u in parts)
