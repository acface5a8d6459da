"""The SQLite file under the job store: opening, pragmas, migrations, transactions, errors.

Everything here is blocking and runs on the store's own thread (see ``SqliteStore``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from hauler.errors import StoreUnavailable
from hauler.redact import redact_url

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 10.0
_MIGRATION_MARK = "-- migration:"


def parse_url(url: str) -> tuple[Path, float]:
    """``sqlite:///rel.db`` → (``rel.db``, busy timeout); ``sqlite:////abs/x.db`` → ``/abs/x.db``.

    ``?busy_timeout_s=N`` sets how long a write waits for another process's lock.
    """
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"bad SQLite store URL {redact_url(url)!r}: use sqlite:///relative.db or "
            "sqlite:////abs.db"
        )
    path, _, query = url[len(prefix) :].partition("?")
    options = dict(parse_qsl(query))
    return Path(path), float(options.get("busy_timeout_s", DEFAULT_BUSY_TIMEOUT_S))


def load_migrations() -> list[tuple[int, list[str]]]:
    """schema.sql split into (version, statements) blocks, in version order."""
    text = files("hauler.store").joinpath("schema.sql").read_text(encoding="utf-8")
    blocks: list[tuple[int, list[str]]] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        if line.startswith(_MIGRATION_MARK):
            blocks.append((int(line[len(_MIGRATION_MARK) :]), []))
            continue
        if not blocks or (not pending and line.lstrip().startswith("--")):
            continue
        pending += line
        # complete_statement knows that a ';' inside a trigger's BEGIN…END does not end it.
        if sqlite3.complete_statement(pending):
            blocks[-1][1].append(pending.strip())
            pending = ""
    return sorted(blocks)


def _row_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the store file; raises ``StoreUnavailable``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create the directory of the SQLite store {path}: {exc.strerror}; "
            "check the --store path and that its parent directory is writable"
        ) from exc
    try:
        _create_private(path)
        conn = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise _unopenable(path, exc) from exc
    try:
        _configure(conn, busy_timeout_s)
        migrate(conn, load_migrations())
    except sqlite3.Error as exc:
        conn.close()
        raise _unopenable(path, exc) from exc
    conn.row_factory = _row_dict
    return conn


def _create_private(path: Path) -> None:
    """Create the store file readable by its owner only (it holds URL passwords and auth
    headers); SQLite gives its -wal and -shm files the same mode. An existing file keeps its
    mode: the user may have shared it on purpose."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise sqlite3.OperationalError(f"{exc.strerror}: {path}") from exc
    os.close(fd)


def _unopenable(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    return StoreUnavailable(
        f"cannot open the SQLite store {path}: {exc}; check that the file and its directory "
        "exist, are writable by this user, and that the file is a hauler store"
    )


def _configure(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    # WAL: readers never block the writer, and several worker processes share the file.
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit survives a crash of the process, but after a power loss or
    # OS crash the last few commits (since the last checkpoint's fsync) may be rolled back.
    # The file is never corrupted; a job claimed just before may come back as queued again,
    # which leases and fencing tolerate.
    conn.execute("PRAGMA synchronous = NORMAL")


def migrate(conn: sqlite3.Connection, blocks: list[tuple[int, list[str]]]) -> None:
    """Apply each block above ``user_version`` in its own write transaction.

    The version is read again inside the transaction, so two processes opening a fresh file
    at once apply each block exactly once.
    """
    for version, statements in blocks:
        with transaction(conn):
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current >= version:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A short write transaction: ``BEGIN IMMEDIATE`` takes the write lock up front, so it
    waits (busy_timeout) at the start rather than failing midway on a lock upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # A failed statement may already have ended the transaction on SQLite's side.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def guarded(path: Path, busy_timeout_s: float, fn: Callable[[], T]) -> T:
    """Run ``fn`` and map sqlite3 failures to ``StoreUnavailable`` naming ``path``."""
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreUnavailable(
                f"the SQLite store {path} stayed locked by another process for more than "
                f"{busy_timeout_s:g} s; check for a stuck hauler process, or use Redis for "
                "many workers"
            ) from exc
        raise StoreUnavailable(f"the SQLite store {path} failed: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(
            f"the SQLite store {path} is unreadable: {exc}; check the disk and the file"
        ) from exc
