"""The SQLite file under the job store: opening, pragmas, migrations, transactions, errors.

Everything here is blocking and runs on the store's own thread (see ``SqliteStore``).
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
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

logger = logging.getLogger(__name__)

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


class SharedMemoryWatch:
    """What this process last saw of the store's ``-shm`` file, the WAL index that SQLite maps
    into the memory of every process using the store.

    SQLite never shrinks or replaces that file while a connection has it open. Another program
    can (``truncate``, ``: > state.db-shm``, a cleanup job, a client whose locks this machine
    does not see): a page of the mapping past the new end of the file then kills the next
    process that touches it with SIGBUS, without a word. Looking (``os.stat``, no descriptor:
    closing one would drop this process's POSIX locks on the file) before each use catches it.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + "-shm")
        self._seen: os.stat_result | None = None

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None

    def record(self) -> None:
        """Remember the file as it is now (after SQLite used it, possibly growing it). A file
        gone now is not remembered as "none": deleted while a call ran, it must still read as
        replaced at the next one (else the connection would keep the deleted file for good)."""
        now = self._stat()
        if now is not None or self._seen is None:
            self._seen = now

    def change(self) -> tuple[str, int] | None:
        """How the file changed since ``record``: ``("cut", size it had)``, ``("replaced", 0)``
        (also deleted), or None when it is as SQLite left it (or there was none: no WAL)."""
        before, now = self._seen, self._stat()
        if before is None:
            return None
        if now is None or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            return "replaced", 0
        if now.st_size < before.st_size:
            return "cut", before.st_size
        return None


class Database:
    """The store's one connection, used from one thread, watching its ``-shm`` file between
    calls (see ``SharedMemoryWatch``): a file cut short gets its size back (SQLite sees an
    empty index and rebuilds it from the ``-wal`` file, which holds the data); a file deleted
    or replaced makes the connection reopen, so that it shares the new one with the processes
    that opened the store since. Either way one WARNING line names the file and what to check.
    """

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.conn = connect(path, busy_timeout_s)
        self._shm = SharedMemoryWatch(path)
        self._shm.record()
        _report_fatal_signals()

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` with sqlite3 failures mapped (``guarded``), after the -shm check."""
        self._repair_shared_memory(may_reopen=True)
        try:
            return guarded(self.path, self.busy_timeout_s, lambda: fn(self.conn))
        finally:
            self._shm.record()

    def close(self) -> None:
        """Close the connection, the -shm whole again first: closing may checkpoint, which
        reads it (a replaced one is fine: this connection still maps the old file)."""
        try:
            self._repair_shared_memory(may_reopen=False)
        except StoreUnavailable as exc:
            # Closing could checkpoint through the cut mapping: left open until the process
            # exits, the file is repaired by the next process that opens the store.
            logger.warning("left the SQLite store %s open: %s", self.path, exc)
            return
        self.conn.close()

    def _repair_shared_memory(self, may_reopen: bool) -> None:
        change = self._shm.change()
        if change is None:
            return
        what, size = change
        if what == "cut":
            _restore_size(self._shm.path, size)
            done = (
                f"was cut short by another program; restored its {size} bytes (SQLite rebuilds "
                "the index from the -wal file)"
            )
        elif may_reopen:
            self.conn.close()
            self.conn = connect(self.path, self.busy_timeout_s)
            done = "was deleted or replaced by another program; reopened the store"
        else:
            return
        self._shm.record()
        logger.warning(
            "the SQLite store %s: its shared-memory file %s %s; check what empties or deletes "
            "files in %s: a store's -shm and -wal files must be left alone while a hauler "
            "process uses it",
            self.path, self._shm.path, done, self.path.parent,
        )  # fmt: skip


def _restore_size(shm: Path, size: int) -> None:
    """Give the -shm back the size this process maps (by path: no descriptor, see above); the
    lost pages read as zeros, an invalid index that SQLite recovers from the WAL.

    Those pages are allocated when SQLite writes the index into them through its mapping: on a
    full disk that write would be the SIGBUS again, so without room the store stays unavailable
    (the worker retries) until there is."""
    room = os.statvfs(shm.parent)
    if room.f_bavail * room.f_frsize < size:
        raise StoreUnavailable(
            f"the shared-memory file {shm} of the SQLite store was cut short by another "
            f"program, and its disk has no room for its {size} bytes; free space on it"
        )
    try:
        os.truncate(shm, size)
    except OSError as exc:
        raise StoreUnavailable(
            f"the shared-memory file {shm} of the SQLite store was cut short by another "
            f"program and cannot be restored: {exc.strerror}; stop every hauler process using "
            "the store, then start them again"
        ) from exc


def _report_fatal_signals() -> None:
    """Last resort for a -shm cut while a call is inside SQLite (the check above cannot see
    that): faulthandler prints "Fatal Python error: Bus error" and where, instead of nothing."""
    if faulthandler.is_enabled():
        return
    # Without a real stderr (embedded, captured) there is nowhere to print: leave it off.
    with contextlib.suppress(AttributeError, ValueError, OSError):
        faulthandler.enable()
