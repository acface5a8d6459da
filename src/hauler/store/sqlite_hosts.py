"""``HostBudgets`` over the SQLite store (tables ``hosts``, ``host_proxies``, ``host_slots`` and
the ``hosts_version`` row of ``pool_meta``: schema.sql, migration 6; statements: sql/hosts.sql).

Every method is one transaction on the store's thread. ``enter_host`` reads, decides and writes
inside one ``BEGIN IMMEDIATE``: no other process can take a slot or a token in between, and the
bucket arithmetic is ``hostrate.Bucket``'s own (the Redis scripts copy it).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hauler.clock import Clock
from hauler.hosts import FREE, Admission, HostBudget, HostLimit, Refusal
from hauler.policy.hostrate import Bucket
from hauler.store.base import CONNECTION_POLL_S
from hauler.store.codec import (
    budget_key,
    checked_positive,
    checked_time,
    host_budget_from_fields,
    host_limit_from_json,
    host_limit_to_json,
)
from hauler.store.sqlite_db import transaction
from hauler.store.sqlite_queries import query

T = TypeVar("T")

# Hosts known only by cooldowns that are over, deleted by one cool_host (sql/hosts.sql: sweep).
_SWEEP = 100


@dataclass(frozen=True, slots=True)
class _Ask:
    """One ``enter_host`` call: ``proxy`` '' for a direct request."""

    host: str
    proxy: str
    slot: str
    expires_at: float
    now: float

    @property
    def keys(self) -> dict[str, Any]:
        return {"host": self.host, "proxy": self.proxy, "now": self.now}


def _cooldown_wait(now: float, *ends: float | None) -> float | None:
    """How long until the latest of ``ends`` is over, or None when none is still to come."""
    latest = max((end for end in ends if end is not None), default=None)
    return None if latest is None or latest <= now else latest - now


def _connections_wait(conn: sqlite3.Connection, ask: _Ask, limit: HostLimit) -> float | None:
    """None when a slot is free in the host's set and the pair's, else how long to wait."""
    sets = [("", limit.connections)]
    if ask.proxy:
        sets.append((ask.proxy, limit.proxy_connections))
    waits = []
    for proxy, cap in sets:
        if cap is None:
            continue
        row = conn.execute(query("hosts.live_slots"), {**ask.keys, "proxy": proxy}).fetchone()
        if row["n"] >= cap:
            waits.append(row["first"] - ask.now)
    return min(CONNECTION_POLL_S, max(waits)) if waits else None


def _hold(conn: sqlite3.Connection, ask: _Ask) -> None:
    """The slot in the host's set and, with a proxy, the pair's; expired ones dropped."""
    for proxy in dict.fromkeys(["", ask.proxy]):
        params = {**ask.keys, "proxy": proxy, "slot": ask.slot, "expires_at": ask.expires_at}
        conn.execute(query("hosts.drop_expired"), params)
        conn.execute(query("hosts.hold_slot"), params)


def _take_host(conn: sqlite3.Connection, ask: _Ask, row: dict[str, Any], burst: float) -> float:
    """A token from the host's bucket at the rate in force (none: no wait); requests + 1."""
    tokens, updated_at, wait_s = row["tokens"], row["updated_at"], 0.0
    if row["rate_per_s"] is not None:
        bucket = Bucket(row["rate_per_s"], burst, tokens, updated_at)
        taken, wait_s = bucket.take(ask.now)
        tokens, updated_at = taken.tokens, taken.updated_at
    params = {"host": ask.host, "tokens": tokens, "updated_at": updated_at}
    conn.execute(query("hosts.admitted"), params)
    return wait_s


def _take_pair(
    conn: sqlite3.Connection, ask: _Ask, pair: dict[str, Any] | None, limit: HostLimit
) -> float:
    """A token from the pair's bucket (a new one is full) at ``proxy_rate_per_s``."""
    if limit.proxy_rate_per_s is None:
        return 0.0
    if pair is None or pair["tokens"] is None:
        bucket = Bucket.full(limit.proxy_rate_per_s, limit.burst, ask.now)
    else:
        bucket = Bucket(limit.proxy_rate_per_s, limit.burst, pair["tokens"], pair["updated_at"])
    taken, wait_s = bucket.take(ask.now)
    params = {**ask.keys, "tokens": taken.tokens, "updated_at": taken.updated_at}
    conn.execute(query("hosts.write_pair_bucket"), params)
    return wait_s


def _enter(conn: sqlite3.Connection, ask: _Ask) -> Admission:
    """``enter_host``'s decision and writes, inside the caller's transaction."""
    row = conn.execute(query("hosts.get"), ask.keys).fetchone()
    if row is None:
        return FREE
    pair = conn.execute(query("hosts.get_pair"), ask.keys).fetchone() if ask.proxy else None
    answer = Admission(None, 0.0, row["rate_per_s"], row["rate_changed_at"])
    cooling = _cooldown_wait(ask.now, row["cooldown_until"], pair and pair["cooldown_until"])
    if cooling is not None:
        return dataclasses.replace(answer, refusal=Refusal.COOLDOWN, wait_s=cooling)
    limit = host_limit_from_json(row["limit_json"])
    if limit is None:
        conn.execute(query("hosts.admitted"), {**ask.keys, **row})
        return answer
    full = _connections_wait(conn, ask, limit)
    if full is not None:
        return dataclasses.replace(answer, refusal=Refusal.CONNECTIONS, wait_s=full)
    _hold(conn, ask)
    wait_s = _take_host(conn, ask, row, limit.burst)
    if ask.proxy:
        wait_s = max(wait_s, _take_pair(conn, ask, pair, limit))
    return dataclasses.replace(answer, wait_s=wait_s)


def _enter_or_free(conn: sqlite3.Connection, ask: _Ask) -> Admission:
    """``_enter`` in one ``BEGIN IMMEDIATE``, after a plain read (WAL: it waits for no writer)
    finds the host held: a request to a host without a budget never takes the write lock. A
    limit set between the two is as if set just after the request."""
    if not conn.execute(query("hosts.is_held"), ask.keys).fetchall():
        return FREE
    with transaction(conn):
        return _enter(conn, ask)


def _set_rate(
    conn: sqlite3.Connection, host: str, rate_per_s: float, expected: float, now: float
) -> bool:
    row = conn.execute(query("hosts.get"), {"host": host}).fetchone()
    limit = host_limit_from_json(row["limit_json"]) if row else None
    if row is None or limit is None or row["rate_per_s"] is None:
        return False
    if row["rate_changed_at"] != expected:
        return False
    bucket = Bucket(row["rate_per_s"], limit.burst, row["tokens"], row["updated_at"])
    moved = bucket.with_rate(rate_per_s, now)
    params = {"host": host, "rate_per_s": rate_per_s, "now": now, "tokens": moved.tokens,
              "updated_at": moved.updated_at}  # fmt: skip
    conn.execute(query("hosts.set_rate"), params)
    return True


def _forget(conn: sqlite3.Connection, host: str) -> None:
    for name in ("hosts.forget", "hosts.forget_pairs", "hosts.forget_slots"):
        conn.execute(query(name), {"host": host})


def _cool(conn: sqlite3.Connection, host: str, proxy: str | None, until: float, now: float) -> None:
    for (old,) in conn.execute(query("hosts.sweep"), {"now": now, "limit": _SWEEP}).fetchall():
        _forget(conn, old)
    host_until = None if proxy else until
    conn.execute(query("hosts.cool"), {"host": host, "now": now, "until": host_until})
    if proxy:
        conn.execute(query("hosts.cool_pair"), {"host": host, "proxy": proxy, "until": until})
    conn.execute(query("hosts.bump_version"))


def _budgets(conn: sqlite3.Connection, now: float) -> list[HostBudget]:
    rows = conn.execute(query("hosts.listed"), {"now": now}).fetchall()
    cooling: dict[str, dict[str, float]] = {}
    for pair in conn.execute(query("hosts.pair_cooldowns")).fetchall():
        cooling.setdefault(pair["host"], {})[pair["proxy"]] = pair["cooldown_until"]
    return [
        host_budget_from_fields(row["host"], row, cooling.get(row["host"], {}), row["in_use"])
        for row in rows
    ]


class SqliteHosts:
    """The ``HostBudgets`` methods of ``SqliteStore`` (a mixin: it provides ``_run``,
    ``_write`` and ``_clock``)."""

    _clock: Clock

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    async def set_host_limit(self, limit: HostLimit) -> None:
        """See ``HostBudgets.set_host_limit``."""
        params = {"host": limit.host, "limit_json": host_limit_to_json(limit),
                  "rate_per_s": limit.rate_per_s, "burst": limit.burst,
                  "now": self._clock.now()}  # fmt: skip

        def store(conn: sqlite3.Connection) -> None:
            conn.execute(query("hosts.set_limit"), params)
            conn.execute(query("hosts.fill_pairs"), params)
            conn.execute(query("hosts.bump_version"))

        await self._write(store)

    async def remove_host_limit(self, host: str) -> bool:
        """See ``HostBudgets.remove_host_limit``: True when ``host_budgets`` listed it."""
        key = budget_key(host)
        params = {"host": key, "now": self._clock.now()}

        def remove(conn: sqlite3.Connection) -> bool:
            was_listed = bool(conn.execute(query("hosts.is_listed"), params).fetchall())
            _forget(conn, key)
            if was_listed:
                conn.execute(query("hosts.bump_version"))
            return was_listed

        return await self._write(remove)

    async def host_budgets(self) -> list[HostBudget]:
        """See ``HostBudgets.host_budgets``."""
        now = self._clock.now()
        return await self._run(lambda conn: _budgets(conn, now))

    async def enter_host(
        self, host: str, proxy: str | None, slot: str, slot_ttl_s: float
    ) -> Admission:
        """See ``HostBudgets.enter_host``: one ``BEGIN IMMEDIATE`` (none for a free host)."""
        now = self._clock.now()
        ttl_s = checked_positive("slot_ttl_s", slot_ttl_s)
        ask = _Ask(budget_key(host), proxy or "", slot, now + ttl_s, now)
        return await self._run(lambda conn: _enter_or_free(conn, ask))

    async def leave_host(self, host: str, proxy: str | None, slot: str) -> None:
        """See ``HostBudgets.leave_host``."""
        params = {"host": budget_key(host), "proxy": proxy or "", "slot": slot}
        await self._write(lambda conn: conn.execute(query("hosts.release_slot"), params))

    async def renew_host_slots(
        self, host: str, proxy: str | None, slots: Sequence[str], slot_ttl_s: float
    ) -> None:
        """See ``HostBudgets.renew_host_slots``."""
        now = self._clock.now()
        expires_at = now + checked_positive("slot_ttl_s", slot_ttl_s)
        params = [
            {"host": budget_key(host), "proxy": proxy or "", "slot": slot, "now": now,
             "expires_at": expires_at}
            for slot in slots
        ]  # fmt: skip
        if params:
            await self._write(lambda conn: conn.executemany(query("hosts.renew_slot"), params))

    async def cool_host(self, host: str, proxy: str | None, until: float) -> None:
        """See ``HostBudgets.cool_host``; also deletes a bounded number of hosts known only by
        cooldowns that are over."""
        now, key = self._clock.now(), budget_key(host)
        until = checked_time("until", until)
        await self._write(lambda conn: _cool(conn, key, proxy, until, now))

    async def set_host_rate(self, host: str, rate_per_s: float, expected_changed_at: float) -> bool:
        """See ``HostBudgets.set_host_rate``."""
        rate = checked_positive("rate_per_s", rate_per_s)
        now, key = self._clock.now(), budget_key(host)
        return await self._write(lambda conn: _set_rate(conn, key, rate, expected_changed_at, now))

    async def hosts_version(self) -> int:
        """See ``HostBudgets.hosts_version``."""
        sql = query("hosts.version")
        rows = await self._run(lambda conn: conn.execute(sql).fetchall())
        return int(rows[0]["value"])
