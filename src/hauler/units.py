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


_REQUEST_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(?:/\s*([a-z]+))?\s*$", re.IGNORECASE)
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_request_rate(text: str) -> float:
    """Parse ``5/s``, ``0.5/s``, ``30/min``, ``100/h`` or ``5`` (a second) into requests a
    second; a rate of zero is refused (no request would ever go)."""
    match = _REQUEST_RATE.match(text)
    per_s = _PER.get((match.group(2) or "s").lower()) if match else None
    if match is None or per_s is None:
        raise ValueError(f"not a request rate: {text!r} (examples: 5/s, 0.5/s, 30/min, 100/h)")
    if not float(match.group(1)) > 0:
        raise ValueError(f"a request rate must be more than 0, not {text!r}")
    return float(match.group(1)) / per_s
