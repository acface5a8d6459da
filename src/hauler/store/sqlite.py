"""The embedded job store: one SQLite file (WAL), shared by the worker processes of one machine.

Every blocking sqlite3 call runs on the store's own thread (one connection, one thread), so a
worker's event loop keeps moving its transfers while the store waits for the file lock.
Every write is one short ``BEGIN IMMEDIATE`` transaction; counts per state are kept by
triggers (schema.sql) inside the same transactions. The statements are package files
(``store/sql/*.sql``, read once by ``sqlite_queries``).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from hauler.clock import Clock
from hauler.config import default_store_url
from hauler.errors import BadRequest, LeaseLost, StoreUnavailable
from hauler.models import Job, JobError, JobSpec, JobState, WorkerInfo
from hauler.store import sqlite_db
from hauler.store.base import LOST_MESSAGE, MAX_LOST_LEASES, AddResult, Completion, JobFilter
from hauler.store.codec import (
    info_from_blob,
    info_keys,
    info_to_blob,
    job_from_fields,
    result_to_json,
    spec_to_json,
    worker_from_json,
    worker_to_json,
)
from hauler.store.sqlite_db import transaction
from hauler.store.sqlite_hosts import SqliteHosts
from hauler.store.sqlite_pools import SqlitePools
from hauler.store.sqlite_queries import query

T = TypeVar("T")

_ALL = JobFilter()
# Expired cache keys one put deletes, beyond as many as it adds (info.forget_expired).
_INFO_SWEEP = 100


def _claim_order(job: Job) -> tuple[int, float, int]:
    return (-job.priority, job.ready_at, int(job.id))


def _where(flt: JobFilter, state_sql: str) -> tuple[str, dict[str, Any]]:
    """A SELECT of matching ids (most recently updated first) and its parameters."""
    clauses = [state_sql]
    params: dict[str, Any] = {"state": flt.state, "limit": -1 if flt.limit is None else flt.limit}
    for column, value, op in (
        ("error_class", flt.reason, "="),
        ("host", flt.host.lower() if flt.host else None, "="),
        ("updated_at", flt.since, ">="),
        ("collection", flt.collection, "="),
    ):
        if value is not None:
            clauses.append(f"{column} {op} :{column}")
            params[column] = value
    return query("jobs.matching_ids").format(where=" AND ".join(clauses)), params


class SqliteStore(SqlitePools, SqliteHosts):
    """The ``Store`` contract over one SQLite file (see ``hauler.store.base``)."""

    def __init__(self, db: sqlite_db.Database, executor: ThreadPoolExecutor, clock: Clock) -> None:
        self._db = db
        self._executor = executor
        self._path = db.path
        self._clock = clock
        self._closed = False

    @classmethod
    async def open(cls, url: str, clock: Clock) -> SqliteStore:
        """Open (create, migrate) the file named by ``url``; raises ``StoreUnavailable``."""
        path, busy_timeout_s = sqlite_db.parse_url(url)
        _check_directory(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hauler-sqlite")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, sqlite_db.Database, path, busy_timeout_s)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, clock)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the store's thread, with sqlite3 errors mapped."""
        if self._closed:
            raise StoreUnavailable(f"the SQLite store {self._path} is closed")
        call = functools.partial(self._db.call, fn)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` inside one write transaction on the store's thread."""

        def in_transaction(conn: sqlite3.Connection) -> T:
            with transaction(conn):
                result = fn(conn)
            return result

        return await self._run(in_transaction)

    async def add(self, specs: Sequence[JobSpec]) -> AddResult:
        """See ``Store.add``: one transaction for the whole batch."""
        now = self._clock.now()
        rows = [
            (s.dedupe_key, spec_to_json(s), s.priority, s.max_attempts, now, s.host,
             s.collection, now, now)
            for s in specs
        ]  # fmt: skip

        def insert(conn: sqlite3.Connection) -> list[str]:
            ids: list[str] = []
            for row in rows:
                inserted = conn.execute(query("add.insert"), row).fetchall()
                ids.extend(str(r["id"]) for r in inserted)
            return ids

        ids = await self._write(insert)
        return AddResult(ids=ids, skipped=len(specs) - len(ids))

    async def claim(
        self, worker: str, node: str, n: int, lease_s: float, affinity_s: float = 30.0
    ) -> list[Job]:
        """See ``Store.claim``."""
        if n <= 0:
            return []
        now = self._clock.now()
        params = {
            "now": now, "worker": worker, "node": node, "n": n,
            "lease_until": now + lease_s, "affinity_s": affinity_s,
            "max_lost": MAX_LOST_LEASES, "lost_message": LOST_MESSAGE,
        }  # fmt: skip

        def take(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.execute(query("claim.move_due_retries"), params)
            conn.execute(query("claim.reclaim_expired"), params)
            return conn.execute(query("claim.take"), params).fetchall()

        jobs = [job_from_fields(row) for row in await self._write(take)]
        return sorted(jobs, key=_claim_order)

    async def heartbeat(self, leases: Sequence[tuple[str, int]], lease_s: float) -> list[str]:
        """See ``Store.heartbeat``."""
        lease_until = self._clock.now() + lease_s
        params = [{"id": i, "token": t, "lease_until": lease_until} for i, t in leases]
        return await self._write(functools.partial(_fenced_each, query("lease.heartbeat"), params))

    async def complete(self, done: Sequence[Completion]) -> list[str]:
        """See ``Store.complete``."""
        now = self._clock.now()
        params = [
            {"id": c.job_id, "token": c.token, "result": result_to_json(c.result), "now": now}
            for c in done
        ]
        return await self._write(functools.partial(_fenced_each, query("lease.complete"), params))

    async def fail(
        self,
        job_id: str,
        token: int,
        error: JobError,
        retry_at: float | None,
        *,
        is_counted: bool = True,
    ) -> JobState:
        """See ``Store.fail``."""
        params = {
            "id": job_id, "token": token, "now": self._clock.now(), "retry_at": retry_at,
            "uncounted": 0 if is_counted else 1,
            "state": JobState.FAILED if retry_at is None else JobState.RETRYING,
            "error_class": error.error_class, "error_message": error.message,
            "error_at": error.at,
        }  # fmt: skip
        sql = query("lease.fail")
        rows = await self._write(lambda conn: conn.execute(sql, params).fetchall())
        if not rows:
            raise LeaseLost(f"job {job_id}: token {token} is no longer current")
        return JobState(rows[0]["state"])

    async def save_result(self, job_id: str, token: int, result: Mapping[str, Any]) -> None:
        """See ``Store.save_result``."""
        params = {"id": job_id, "token": token, "now": self._clock.now(),
                  "result": result_to_json(result)}  # fmt: skip
        sql = query("lease.save_result")
        rows = await self._write(lambda conn: conn.execute(sql, params).fetchall())
        if not rows:
            raise LeaseLost(f"job {job_id}: token {token} is no longer current")

    async def release(self, job_id: str, token: int) -> None:
        """See ``Store.release``."""
        params = {"id": job_id, "token": token, "now": self._clock.now()}
        sql = query("lease.release")
        rows = await self._write(lambda conn: conn.execute(sql, params).fetchall())
        if not rows:
            raise LeaseLost(f"job {job_id}: token {token} is no longer current")

    async def get(self, job_id: str) -> Job | None:
        """See ``Store.get``."""
        sql = query("jobs.get")
        rows = await self._run(lambda conn: conn.execute(sql, (job_id,)).fetchall())
        return job_from_fields(rows[0]) if rows else None

    async def list_jobs(self, flt: JobFilter = _ALL) -> list[Job]:
        """See ``Store.list_jobs``."""
        select, params = _where(flt, "state = :state" if flt.state else "1")
        sql = query("jobs.list").format(select=select)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [job_from_fields(row) for row in rows]

    async def counts(self) -> dict[JobState, int]:
        """See ``Store.counts``: read from the trigger-maintained table, no scan."""
        sql = query("jobs.counts")
        rows = await self._run(lambda conn: conn.execute(sql).fetchall())
        found = {row["state"]: int(row["n"]) for row in rows}
        return {state: found.get(state.value, 0) for state in JobState}

    async def requeue(self, flt: JobFilter) -> int:
        """See ``Store.requeue``."""
        state = flt.state or JobState.FAILED
        if state is JobState.RUNNING:
            raise ValueError("running jobs cannot be requeued; stop their workers first")
        select, params = _where(flt, "state = :state")
        params.update(state=state, now=self._clock.now())
        sql = query("jobs.requeue").format(select=select)
        return await self._write(lambda conn: conn.execute(sql, params).rowcount)

    async def clear(self, flt: JobFilter) -> int:
        """See ``Store.clear``: deleting a row forgets its dedupe key too."""
        select, params = _where(flt, "state = :state" if flt.state else "state <> 'running'")
        sql = query("jobs.clear").format(select=select)
        return await self._write(lambda conn: conn.execute(sql, params).rowcount)

    async def set_paused(self, paused: bool, worker: str | None = None) -> None:
        """See ``Store.set_paused``; resuming the fleet also resumes every paused worker."""
        statements: list[tuple[str, tuple[Any, ...]]]
        if worker is None and paused:
            statements = [(query("flags.pause_fleet"), ())]
        elif worker is None:
            statements = [(query("flags.resume_fleet"), ()),
                          (query("flags.resume_every_worker"), ())]  # fmt: skip
        elif paused:
            statements = [(query("flags.pause_worker"), (worker,))]
        else:
            statements = [(query("flags.resume_worker"), (worker,))]
        await self._write(functools.partial(_execute_all, statements))

    async def is_paused(self, worker: str) -> bool:
        """See ``Store.is_paused``."""
        sql = query("flags.is_paused")
        rows = await self._run(lambda conn: conn.execute(sql, (worker,)).fetchall())
        return bool(rows[0]["paused"])

    async def paused_workers(self) -> tuple[bool, list[str]]:
        """See ``Store.paused_workers``."""

        def read(conn: sqlite3.Connection) -> tuple[bool, list[str]]:
            fleet = conn.execute(query("flags.is_fleet_paused")).fetchall()
            names = conn.execute(query("flags.paused_workers")).fetchall()
            return bool(fleet), [row["name"] for row in names]

        return await self._run(read)

    async def request_stop(self) -> float:
        """See ``Store.request_stop``."""
        now = self._clock.now()
        sql = query("flags.request_stop")
        await self._write(lambda conn: conn.execute(sql, (now,)))
        return now

    async def stop_requested_at(self) -> float | None:
        """See ``Store.stop_requested_at``."""
        sql = query("flags.stop_requested_at")
        rows = await self._run(lambda conn: conn.execute(sql).fetchall())
        return float(rows[0]["value"]) if rows else None

    async def beat_worker(self, info: WorkerInfo, ttl_s: float) -> None:
        """See ``Store.beat_worker``; also forgets workers whose heartbeat ran out."""
        statements = [
            (query("workers.forget_expired"), (self._clock.now(),)),
            (query("workers.beat"),
             (info.name, worker_to_json(info), info.seen_at + ttl_s)),
        ]  # fmt: skip
        await self._write(functools.partial(_execute_all, statements))

    async def remove_worker(self, name: str) -> None:
        """See ``Store.remove_worker``."""
        statements = [(query("workers.remove"), (name,))]
        await self._write(functools.partial(_execute_all, statements))

    async def workers(self) -> list[WorkerInfo]:
        """See ``Store.workers``."""
        sql = query("workers.alive")
        now = self._clock.now()
        rows = await self._run(lambda conn: conn.execute(sql, (now,)).fetchall())
        return [worker_from_json(row["info"]) for row in rows]

    async def get_info(self, key: str) -> dict[str, Any] | None:
        """See ``InfoCache.get_info``."""
        params = {"key": key, "now": self._clock.now()}
        sql = query("info.get")
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return info_from_blob(rows[0]["info"]) if rows else None

    async def put_info(self, keys: Sequence[str], info: dict[str, Any], ttl_s: float) -> None:
        """See ``InfoCache.put_info``: one transaction, which first deletes a bounded number of
        expired keys (and with them their blobs)."""
        names = info_keys(keys, ttl_s)
        blob = info_to_blob(info)
        now = self._clock.now()

        def put(conn: sqlite3.Connection) -> None:
            sweep = {"now": now, "limit": _INFO_SWEEP + len(names)}
            conn.execute(query("info.forget_expired"), sweep)
            (row,) = conn.execute(query("info.insert_blob"), {"info": blob}).fetchall()
            conn.executemany(
                query("info.point"),
                [{"key": k, "blob": row["id"], "expires_at": now + ttl_s} for k in names],
            )

        await self._write(put)

    async def drop_info(self, key: str) -> None:
        """See ``InfoCache.drop_info``."""
        sql = query("info.drop")
        await self._write(lambda conn: conn.execute(sql, {"key": key}))

    async def close(self) -> None:
        """See ``Store.close``; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)


def _check_directory(path: Path) -> None:
    """Refuse a store file whose directory does not exist (a typo in ``--store`` would
    otherwise create a tree of directories and an empty store nobody else sees). Only the
    default store, in the user's data directory, has its directory created."""
    directory = path.parent
    if directory.exists() or path == sqlite_db.parse_url(default_store_url())[0]:
        return
    raise BadRequest(
        f"the directory {directory} of the store file does not exist; create it or give "
        "another --store (sqlite:////abs/path/state.db: four slashes for an absolute path, "
        "three for a relative one)"
    )


def _fenced_each(sql: str, params: list[dict[str, Any]], conn: sqlite3.Connection) -> list[str]:
    """Run a fenced UPDATE per job; return the ids it did not change (lost)."""
    return [str(p["id"]) for p in params if conn.execute(sql, p).rowcount == 0]


def _execute_all(statements: list[tuple[str, tuple[Any, ...]]], conn: sqlite3.Connection) -> None:
    for sql, args in statements:
        conn.execute(sql, args)
