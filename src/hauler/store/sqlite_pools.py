"""``ResourcePools`` over the SQLite store (tables ``resources``, ``resource_uses``,
``pool_meta``, ``resource_sites`` with the pick columns of migration 5, and ``resource_holds``
of migration 7: schema.sql; statements: sql/pools.sql).

Every method is one transaction on the store's thread. ``lend`` and ``give_back`` read, call
the caller's pure callable and write inside one ``BEGIN IMMEDIATE``: no other process can write
in between, so nothing is ever tried twice. ``lend_by`` picks in SQL instead (one indexed
``SELECT … ORDER BY … LIMIT 1`` on the pick columns, which every write keeps beside the JSON),
then writes the one row, in the same transaction. A holder's hold is written (and, by
``give_back``, taken off) in the transaction that moves ``in_use``.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from hauler.clock import Clock
from hauler.resources import (
    Counters,
    Resource,
    ResourceKind,
    ResourceSpec,
    ResourceState,
    Strategy,
    Use,
)
from hauler.store import pools_updates as updates
from hauler.store.base import Chooser, Decider
from hauler.store.codec import (
    counters_to_json,
    resource_from_fields,
    resource_spec_from_json,
    resource_spec_to_json,
    uses_from_json,
    uses_to_json,
)
from hauler.store.sqlite_queries import query

T = TypeVar("T")


def _resource(row: dict[str, Any]) -> Resource:
    return resource_from_fields(str(row["id"]), resource_spec_from_json(row["spec"]), row)


def _read(conn: sqlite3.Connection, resource_id: str) -> Resource | None:
    rows = conn.execute(query("pools.get"), {"id": resource_id}).fetchall()
    return _resource(rows[0]) if rows else None


def _write_live(conn: sqlite3.Connection, before: Resource | None, after: Resource) -> None:
    """Store what changes in use; a change of state or until moves ``pools_version``."""
    conn.execute(
        query("pools.write_live"),
        {"id": after.id, "state": after.state.value, "until": after.until,
         "counters": counters_to_json(after.counters), "updated_at": after.updated_at,
         "in_use": after.counters.in_use, "fast_rank": updates.fast_rank(after.counters)},
    )  # fmt: skip
    if updates.is_state_changed(before, after):
        conn.execute(query("pools.bump_version"))


def _add_one(conn: sqlite3.Connection, spec: ResourceSpec, now: float) -> str:
    params = {"key": spec.key, "spec": resource_spec_to_json(spec), "now": now}
    found = conn.execute(query("pools.by_key"), params).fetchall()
    if found:
        resource_id = str(found[0]["id"])
        conn.execute(query("pools.update_spec"), {**params, "id": resource_id})
    else:
        (row,) = conn.execute(query("pools.next_id"), {"kind": spec.kind.value}).fetchall()
        resource_id = updates.resource_id(spec.kind, int(row["value"]))
        conn.execute(
            query("pools.insert"),
            {**params, "id": resource_id, "kind": spec.kind.value,
             "counters": counters_to_json(Counters()),
             "fast_rank": updates.fast_rank(Counters())},
        )  # fmt: skip
    _write_pick_spec(conn, resource_id, spec)
    return resource_id


def _write_pick_spec(conn: sqlite3.Connection, resource_id: str, spec: ResourceSpec) -> None:
    """The spec's pick columns and sites (what ``lend_by`` filters and weighs by)."""
    conn.execute(
        query("pools.write_pick_spec"),
        {"id": resource_id, "weight": spec.weight, "region": updates.normal_region(spec.region),
         "has_sites": int(bool(spec.sites))},
    )  # fmt: skip
    conn.execute(query("pools.forget_sites"), {"id": resource_id})
    for site in spec.sites:
        conn.execute(
            query("pools.add_site"), {"id": resource_id, "site": updates.normal_host(site)}
        )


def _hold(conn: sqlite3.Connection, resource_id: str, holder: str | None) -> None:
    """One more hold of the resource by ``holder`` (none kept without a holder)."""
    if holder is not None:
        conn.execute(query("pools.hold"), {"id": resource_id, "holder": holder})


def _unhold(conn: sqlite3.Connection, resource_id: str, holder: str) -> bool:
    """Take one of ``holder``'s holds of the resource off; False when it had none left."""
    params = {"id": resource_id, "holder": holder}
    if conn.execute(query("pools.drop_last_hold"), params).rowcount:
        return True
    return conn.execute(query("pools.unhold"), params).rowcount > 0


def _released(stored: Resource, count: int, now: float) -> Resource:
    """``stored`` with ``count`` lends given back by a release (``in_use`` never below 0)."""
    in_use = max(0, stored.counters.in_use - count)
    counters = dataclasses.replace(stored.counters, in_use=in_use)
    return dataclasses.replace(stored, counters=counters, updated_at=now)


# The statements of the band ``lend_by`` orders by before the turn (pools.sql: pick_*_BAND).
_BAND = {
    Strategy.ROUND_ROBIN: "turn",
    Strategy.LEAST_CONNECTIONS: "load",
    Strategy.FASTEST: "fast",
}


def _pick(conn: sqlite3.Connection, strategy: Strategy, params: dict[str, Any]) -> Any:
    """The row ``lend_by`` picks (with its ``seq``), or None: the sticky one when eligible,
    else the strategy's."""
    if params["sticky"] is not None:
        rows = conn.execute(query("pools.pick_sticky"), params).fetchall()
        if rows:
            return rows[0]
    if strategy is Strategy.WEIGHTED:
        (total,) = conn.execute(query("pools.weight_total"), params).fetchall()
        if total["total"] > 0:
            point = {**params, "point": params["rng"] * total["total"]}
            rows = conn.execute(query("pools.pick_weighted"), point).fetchall()
            rows = rows or conn.execute(query("pools.pick_weighted_wrap"), params).fetchall()
            return rows[0] if rows else None
        strategy = Strategy.ROUND_ROBIN  # every weight 0: all alike, in turn
    band = _BAND[strategy]
    rows = conn.execute(query(f"pools.pick_first_{band}"), params).fetchall()
    if not rows:
        return None
    # The first of the best band has the lowest seq; the one after the cursor takes its turn.
    after = conn.execute(
        query(f"pools.pick_next_{band}"), {**params, "band": rows[0]["band"]}
    ).fetchall()
    return after[0] if after else rows[0]


class _Parsed:
    """The resources this connection parsed, reused while their row reads the same: a lend
    reads the whole kind, and most of it has not changed since the last one. Used on the
    store's one thread only."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[Any, ...], Resource]] = {}

    def resources(self, conn: sqlite3.Connection, sql: str, params: Any) -> list[Resource]:
        """The rows of ``sql`` as resources. Plain tuples (no dict per row) until one is new:
        on 1,000 rows that is a third of the time."""
        cursor = conn.cursor()
        cursor.row_factory = None
        rows: list[tuple[Any, ...]] = cursor.execute(sql, params).fetchall()
        names = [col[0] for col in cursor.description]
        found: list[Resource] = []
        for values in rows:
            seen = self._seen.get(values[0])
            if seen is None or seen[0] != values:
                seen = (values, _resource(dict(zip(names, values, strict=True))))
                self._seen[values[0]] = seen
            found.append(seen[1])
        return found


class SqlitePools:
    """The ``ResourcePools`` methods of ``SqliteStore`` (a mixin: it provides ``_run``,
    ``_write`` and ``_clock``)."""

    _clock: Clock
    _pool_parsed: _Parsed | None = None

    def _parsed(self) -> _Parsed:
        if self._pool_parsed is None:
            self._pool_parsed = _Parsed()
        return self._pool_parsed

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    async def add_resources(self, specs: Sequence[ResourceSpec]) -> list[str]:
        """See ``ResourcePools.add_resources``: one transaction for the batch."""
        now = self._clock.now()

        def add(conn: sqlite3.Connection) -> list[str]:
            ids = [_add_one(conn, spec, now) for spec in specs]
            for kind in {spec.kind for spec in specs}:
                conn.execute(query("pools.sum_weights"), {"kind": kind.value})
            if ids:
                conn.execute(query("pools.bump_version"))
            return ids

        return await self._write(add)

    async def list_resources(self, kind: ResourceKind | None = None) -> list[Resource]:
        """See ``ResourcePools.list_resources``."""
        if kind is None:
            sql, params = query("pools.all"), {}
        else:
            sql, params = query("pools.of_kind"), {"kind": kind.value}
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [_resource(row) for row in rows]

    async def get_resource(self, resource_id: str) -> Resource | None:
        """See ``ResourcePools.get_resource``."""
        return await self._run(lambda conn: _read(conn, resource_id))

    async def remove_resource(self, resource_id: str) -> bool:
        """See ``ResourcePools.remove_resource``."""

        def remove(conn: sqlite3.Connection) -> bool:
            params = {"id": resource_id}
            if conn.execute(query("pools.remove"), params).rowcount == 0:
                return False
            kind = updates.kind_of_id(resource_id)
            if kind is not None:
                conn.execute(query("pools.sum_weights"), {"kind": kind.value})
            conn.execute(query("pools.forget_uses"), params)
            conn.execute(query("pools.forget_sites"), params)
            conn.execute(query("pools.forget_holds"), params)
            conn.execute(query("pools.bump_version"))
            return True

        return await self._write(remove)

    async def lend(
        self, kind: ResourceKind, choose: Chooser, *, holder: str | None = None
    ) -> Resource | None:
        """See ``ResourcePools.lend``: read, choose and write in one ``BEGIN IMMEDIATE``."""
        sql, params = query("pools.of_kind"), {"kind": kind.value}
        parsed = self._parsed()

        def take(conn: sqlite3.Connection) -> Resource | None:
            offered = parsed.resources(conn, sql, params)
            if not offered:
                return None
            chosen = updates.lent(offered, choose, self._clock.now())
            if chosen is not None:
                before = next(r for r in offered if r.id == chosen.id)
                _write_live(conn, before, chosen)
                _hold(conn, chosen.id, holder)
            return chosen

        return await self._write(take)

    async def lend_by(
        self,
        kind: ResourceKind,
        strategy: Strategy,
        *,
        site: str | None = None,
        region: str | None = None,
        sticky_id: str | None = None,
        max_in_use: int | None = None,
        rng_value: float = 0.0,
        holder: str | None = None,
    ) -> Resource | None:
        """See ``ResourcePools.lend_by``: pick and write in one ``BEGIN IMMEDIATE``."""
        updates.check_rng_value(rng_value)
        now = self._clock.now()
        params: dict[str, Any] = {
            "kind": kind.value, "strategy": strategy.value, "now": now,
            "max_in_use": max_in_use, "region": updates.normal_region(region),
            "suffixes": json.dumps(updates.site_suffixes(site)), "sticky": sticky_id,
            "rng": rng_value,
        }  # fmt: skip

        def take(conn: sqlite3.Connection) -> Resource | None:
            row = _pick(conn, strategy, params)
            if row is None:
                return None
            stored = _resource(dict(row))
            chosen = updates.lent_by(stored, now)
            _write_live(conn, stored, chosen)
            _hold(conn, chosen.id, holder)
            conn.execute(query("pools.move_cursor"), {"kind": kind.value, "seq": row["seq"]})
            return chosen

        return await self._write(take)

    async def give_back(
        self, resource_id: str, use: Use, decide: Decider, *, holder: str | None = None
    ) -> Resource | None:
        """See ``ResourcePools.give_back``: one transaction, the hold taken off in it."""

        def give(conn: sqlite3.Connection) -> Resource | None:
            stored = _read(conn, resource_id)
            if stored is None:
                return None
            rows = conn.execute(query("pools.uses"), {"id": resource_id}).fetchall()
            history = uses_from_json(rows[0]["uses"] if rows else None)
            is_held = holder is None or _unhold(conn, resource_id, holder)
            decider = decide if is_held else updates.keeping_in_use(decide)
            after, kept = updates.given_back(stored, history, use, decider, self._clock.now())
            _write_live(conn, stored, after)
            conn.execute(query("pools.write_uses"), {"id": resource_id, "uses": uses_to_json(kept)})
            return after

        return await self._write(give)

    async def resource_uses(self, resource_id: str) -> list[Use]:
        """See ``ResourcePools.resource_uses``."""
        sql = query("pools.uses")
        rows = await self._run(lambda conn: conn.execute(sql, {"id": resource_id}).fetchall())
        return uses_from_json(rows[0]["uses"] if rows else None)

    async def resource_holders(self) -> dict[str, int]:
        """See ``ResourcePools.resource_holders``."""
        sql = query("pools.holders")
        rows = await self._run(lambda conn: conn.execute(sql).fetchall())
        return {str(row["holder"]): int(row["count"]) for row in rows}

    async def release_holder(self, holder: str) -> int:
        """See ``ResourcePools.release_holder``: one transaction."""
        now = self._clock.now()
        params = {"holder": holder}

        def release(conn: sqlite3.Connection) -> int:
            released = 0
            for row in conn.execute(query("pools.holds_of"), params).fetchall():
                stored = _read(conn, str(row["resource_id"]))
                if stored is not None:
                    _write_live(conn, stored, _released(stored, int(row["count"]), now))
                    released += int(row["count"])
            conn.execute(query("pools.forget_holder"), params)
            return released

        return await self._write(release)

    async def set_resource_state(
        self, resource_id: str, state: ResourceState, until: float | None
    ) -> bool:
        """See ``ResourcePools.set_resource_state``."""
        now = self._clock.now()
        return await self._update(resource_id, lambda r: updates.with_state(r, state, until, now))

    async def reset_resource(self, resource_id: str) -> bool:
        """See ``ResourcePools.reset_resource``: the history and the holds go too."""
        now = self._clock.now()
        forgets = ("pools.forget_uses", "pools.forget_holds")
        return await self._update(resource_id, lambda r: updates.reset(r, now), forgets)

    async def _update(
        self,
        resource_id: str,
        change: Callable[[Resource], Resource],
        forgets: Sequence[str] = (),
    ) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            stored = _read(conn, resource_id)
            if stored is None:
                return False
            _write_live(conn, stored, change(stored))
            for statement in forgets:
                conn.execute(query(statement), {"id": resource_id})
            return True

        return await self._write(update)

    async def pools_version(self) -> int:
        """See ``ResourcePools.pools_version``."""
        sql = query("pools.version")
        rows = await self._run(lambda conn: conn.execute(sql).fetchall())
        return int(rows[0]["value"])
