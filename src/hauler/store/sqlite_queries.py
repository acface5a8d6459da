"""The SQLite store's statements, read once from the package files ``store/sql/*.sql``.

Each file holds the statements of one concern, each after a line ``-- name: NAME``; a statement
is known as ``FILE.NAME`` (``claim.take`` is the statement ``take`` of ``claim.sql``). Comment
lines document the statements and are not sent to SQLite. A few statements hold ``{where}`` or
``{select}``, filled by ``sqlite.py`` with conditions built from fixed column names.
"""

from __future__ import annotations

import functools
from importlib.resources import files

_NAME_MARK = "-- name:"


def parse(stem: str, text: str) -> dict[str, str]:
    """The statements of one file, by ``stem.name``."""
    statements: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_NAME_MARK):
            current = statements.setdefault(f"{stem}.{line[len(_NAME_MARK) :].strip()}", [])
        elif current is not None and not line.lstrip().startswith("--"):
            current.append(line)
    return {name: "\n".join(lines).strip() for name, lines in statements.items()}


@functools.cache
def queries() -> dict[str, str]:
    """Every statement of ``store/sql``, read on first use."""
    found: dict[str, str] = {}
    for entry in sorted(files("hauler.store").joinpath("sql").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            found.update(parse(entry.name.removesuffix(".sql"), entry.read_text("utf-8")))
    return found


def query(name: str) -> str:
    """One statement by ``FILE.NAME``; a ``KeyError`` names a statement no file holds."""
    return queries()[name]
