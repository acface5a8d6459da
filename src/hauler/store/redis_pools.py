"""``ResourcePools`` over the Redis store. Keys, under the namespace's ``{hauler:NAME}`` tag:

- ``pool:KIND:specs``: hash id -> the spec (JSON, secrets included);
- ``pool:keys``: hash ``kind:name`` -> id (an added spec that is known updates it);
- ``pool:next:KIND``: the kind's id counter (``p1``, ``a3``: never reused);
- ``res:ID``: the live record (state, until, counters, times: JSON), read by every lend;
- ``res:ID:uses``: list of the newest uses (JSON), oldest first; ``res:ID:hrev``: moved by
  every write of that list;
- ``pool:KIND:rev``: moved by every write to a resource of the kind (``lend`` WATCHes it);
- ``pool:KIND:specrev``: moved when the kind's specs change (a client's spec cache is stale);
- ``pool:version``: ``pools_version``;
- holds (``lua/pool_common.lua``): ``res:ID:holds`` (hash holder -> count), ``pool:held:HOLDER``
  (hash id -> count: what ``release_holder`` walks) and ``pool:holders`` (hash holder -> its
  count in all: ``resource_holders``), written together with the ``in_use`` they account for;
- ``lend_by``'s indexes (``lua/pool_lend.lua`` describes them): ``pool:KIND:order``, ``:lc``,
  ``:fast``, ``:waiting``, ``:wcum`` (sorted sets), ``:weights``, ``:attrs`` (hashes), and
  ``pool:KIND:cursor``; every write of a live record below keeps them.

``add_resources``, ``remove_resource``, ``reset_resource``, ``release_holder`` and ``lend_by``
are Lua scripts (``lua/pool_*.lua``; ``lend_by`` one round trip that picks by the indexes, no
WATCH). ``give_back`` reads, decides in Python, and writes by ``pool_give.lua``, a
compare-and-set that takes in the lends and releases made since its read (so a busy proxy's
give_back is not tried again for every lend of it). The read-choose-write steps (``lend``,
``set_resource_state``) are optimistic: WATCH (the kind's ``rev`` for a lend, the resource's
record for the other), read, decide in Python, then MULTI/EXEC, which Redis refuses when a
watched key changed meanwhile: the step is tried again after a short jittered pause, at most
``_MAX_TRIES`` times (then ``StoreUnavailable``: the pool is too contended to make progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, cast

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.commands.core import AsyncScript

from hauler.clock import Clock
from hauler.errors import StoreUnavailable
from hauler.resources import (
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
    live_to_json,
    resource_from_live,
    resource_spec_from_json,
    resource_spec_to_json,
    use_from_json,
    use_to_json,
)

# Tries of one optimistic step before giving up, and the first pause between them (doubled
# each try up to 64 times this, with full jitter, so that contenders spread out).
_MAX_TRIES = 100
_PAUSE_S = 0.0005

# An id's number in the low part of an index score (pool_common.lua's SPAN).
_SPAN = 2**24
_SCRIPTS = ("pool_add", "pool_remove", "pool_lend", "pool_give", "pool_release", "pool_reset")


@dataclass
class _KindCache:
    """A client's copy of one kind's specs, valid while ``pool:KIND:specrev`` is ``specrev``,
    and the resources it parsed from live records (reused while a record's text is the same:
    a lend reads the whole kind, and most of it has not changed since the last one)."""

    specrev: str | None = None
    specs: dict[str, ResourceSpec] = field(default_factory=dict)
    parsed: dict[str, tuple[str, Resource]] = field(default_factory=dict)

    def resource(self, resource_id: str, text: str) -> Resource:
        seen = self.parsed.get(resource_id)
        if seen is not None and seen[0] == text:
            return seen[1]
        resource = resource_from_live(resource_id, self.specs[resource_id], text)
        self.parsed[resource_id] = (text, resource)
        return resource


class _UseCache:
    """The uses this client parsed, by their stored text: a give_back reads the resource's
    whole history, and all of it but the newest use was parsed by the one before."""

    _LIMIT = 20_000

    def __init__(self) -> None:
        self._seen: dict[str, Use] = {}

    def use(self, text: str) -> Use:
        found = self._seen.get(text)
        if found is None:
            if len(self._seen) >= self._LIMIT:
                self._seen.clear()  # bounded: start over rather than grow
            found = self._seen[text] = use_from_json(text)
        return found


class _History(list[Use]):
    """A history as read, each use's stored text kept (by the use's identity), so that the
    uses the decider keeps are written back without encoding them again."""

    def __init__(self, texts: Sequence[str], cache: _UseCache) -> None:
        uses = [cache.use(text) for text in texts]
        super().__init__(uses)
        self._texts = {id(u): t for u, t in zip(uses, texts, strict=True)}

    def get(self, key: int) -> str | None:
        """The stored text of the use whose ``id()`` is ``key``, or None for a new one."""
        return self._texts.get(key)


def _id_order(resource_id: str) -> tuple[str, int]:
    return resource_id[0], int(resource_id[1:])


def _attrs(spec: ResourceSpec) -> str:
    """What ``pool_lend.lua`` filters by: ``region\nsite…``, '' when the spec has neither."""
    if not spec.region and not spec.sites:
        return ""
    sites = [updates.normal_host(site) for site in spec.sites]
    return "\n".join([updates.normal_region(spec.region) or "", *sites])


async def _pause(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, _PAUSE_S * 2 ** min(attempt, 6)))


class RedisPools:
    """The ``ResourcePools`` methods of ``RedisStore`` (a mixin: it provides ``_client``,
    ``_prefix``, ``_clock``, ``_key`` and ``_mapped``)."""

    _client: aioredis.Redis
    _prefix: str
    _clock: Clock
    _pool_caches: dict[ResourceKind, _KindCache] | None = None
    _pool_scripts: dict[str, AsyncScript] | None = None
    _pool_uses: _UseCache | None = None

    def _key(self, name: str) -> str:
        raise NotImplementedError  # RedisStore's

    def _mapped(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError  # RedisStore's

    def _cache(self, kind: ResourceKind) -> _KindCache:
        if self._pool_caches is None:
            self._pool_caches = {k: _KindCache() for k in ResourceKind}
        return self._pool_caches[kind]

    async def _pool_script(self, name: str, args: Sequence[Any]) -> Any:
        if self._pool_scripts is None:
            lua = files("hauler.store").joinpath("lua")
            common = lua.joinpath("pool_common.lua").read_text("utf-8")
            self._pool_scripts = {
                n: self._client.register_script(
                    common + lua.joinpath(f"{n}.lua").read_text("utf-8")
                )
                for n in _SCRIPTS
            }
        with self._mapped():
            return await self._pool_scripts[name](keys=[self._prefix], args=list(args))

    async def add_resources(self, specs: Sequence[ResourceSpec]) -> list[str]:
        """See ``ResourcePools.add_resources``: one script call for the batch."""
        if not specs:
            return []
        now = self._clock.now()
        fresh = Resource(id="", spec=specs[0], created_at=now, updated_at=now)
        args: list[Any] = [live_to_json(fresh), updates.fast_rank(fresh.counters) * _SPAN]
        for spec in specs:
            args += [spec.kind.value, updates.ID_LETTER[spec.kind], spec.key,
                     resource_spec_to_json(spec), repr(float(spec.weight)),
                     _attrs(spec)]  # fmt: skip
        return [str(i) for i in await self._pool_script("pool_add", args)]

    async def _specs(self, kind: ResourceKind) -> _KindCache:
        """The kind's specs, read again only when ``specrev`` moved."""
        cache = self._cache(kind)
        with self._mapped():
            specrev = cast(
                str | None, await self._client.get(self._key(f"pool:{kind.value}:specrev"))
            )
            if specrev != cache.specrev or specrev is None:
                specs_key = self._key(f"pool:{kind.value}:specs")
                found = cast(dict[str, str], await self._client.hgetall(specs_key))
                cache.specs = {i: resource_spec_from_json(t) for i, t in found.items()}
                cache.parsed.clear()
                cache.specrev = specrev
        return cache

    async def _read_kind(self, kind: ResourceKind) -> list[Resource]:
        cache = await self._specs(kind)
        ids = sorted(cache.specs, key=_id_order)
        if not ids:
            return []
        with self._mapped():
            texts = cast(
                list[str | None], await self._client.mget([self._key(f"res:{i}") for i in ids])
            )
        return [cache.resource(i, t) for i, t in zip(ids, texts, strict=True) if t is not None]

    async def list_resources(self, kind: ResourceKind | None = None) -> list[Resource]:
        """See ``ResourcePools.list_resources``: proxies first, then accounts."""
        kinds = [kind] if kind is not None else list(ResourceKind)
        return [r for k in kinds for r in await self._read_kind(k)]

    async def get_resource(self, resource_id: str) -> Resource | None:
        """See ``ResourcePools.get_resource``."""
        kind = updates.kind_of_id(resource_id)
        if kind is None:
            return None
        return await self._read_one(kind, resource_id)

    async def _read_one(self, kind: ResourceKind, resource_id: str) -> Resource | None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hget(self._key(f"pool:{kind.value}:specs"), resource_id)
            pipe.get(self._key(f"res:{resource_id}"))
            with self._mapped():
                spec, live = await pipe.execute()
        if spec is None or live is None:
            return None
        return resource_from_live(resource_id, resource_spec_from_json(spec), live)

    async def remove_resource(self, resource_id: str) -> bool:
        """See ``ResourcePools.remove_resource``: one script."""
        kind = updates.kind_of_id(resource_id)
        if kind is None:
            return False
        args = [resource_id, kind.value, updates.ID_LETTER[kind]]
        return bool(await self._pool_script("pool_remove", args))

    async def lend(
        self, kind: ResourceKind, choose: Chooser, *, holder: str | None = None
    ) -> Resource | None:
        """See ``ResourcePools.lend``: WATCH ``pool:KIND:rev``, read the kind, choose, write
        (the hold in the same MULTI)."""
        rev = self._key(f"pool:{kind.value}:rev")
        for attempt in range(_MAX_TRIES):
            async with self._client.pipeline(transaction=True) as pipe:
                with self._mapped(), contextlib.suppress(rex.WatchError):
                    await pipe.watch(rev)
                    offered = await self._read_kind(kind)
                    chosen = updates.lent(offered, choose, self._clock.now()) if offered else None
                    if chosen is None:
                        return None
                    before = next(r for r in offered if r.id == chosen.id)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._queue_live(pipe, kind, before, chosen)
                    if holder is not None:
                        self._queue_hold(pipe, chosen.id, holder)
                    await pipe.execute()
                    return chosen
            await _pause(attempt)
        raise _contended(kind.value)

    def _queue_live(
        self, pipe: aioredis.client.Pipeline, kind: ResourceKind, before: Resource,
        after: Resource,
    ) -> None:  # fmt: skip
        """Queue the write of a resource's live record and the revisions it moves."""
        pipe.set(self._key(f"res:{after.id}"), live_to_json(after))
        pipe.incr(self._key(f"pool:{kind.value}:rev"))
        if updates.is_state_changed(before, after):
            pipe.incr(self._key("pool:version"))
        self._queue_index(pipe, kind, after)

    def _queue_hold(self, pipe: aioredis.client.Pipeline, resource_id: str, holder: str) -> None:
        """Queue one more hold of the resource by ``holder`` (as pool_common.lua's ``hold``)."""
        pipe.hincrby(self._key(f"res:{resource_id}:holds"), holder, 1)
        pipe.hincrby(self._key(f"pool:held:{holder}"), resource_id, 1)
        pipe.hincrby(self._key("pool:holders"), holder, 1)

    def _queue_index(
        self, pipe: aioredis.client.Pipeline, kind: ResourceKind, after: Resource
    ) -> None:
        """Queue ``after``'s places in ``lend_by``'s indexes (pool_lend.lua)."""
        key = f"pool:{kind.value}:"
        member = after.id
        if after.state is ResourceState.DISABLED:
            for index in ("order", "lc", "fast", "waiting"):
                pipe.zrem(self._key(key + index), member)
            return
        number = int(member[1:])
        fast = updates.fast_rank(after.counters) * _SPAN + number
        pipe.zadd(self._key(key + "order"), {member: number})
        pipe.zadd(self._key(key + "lc"), {member: after.counters.in_use * _SPAN + number})
        pipe.zadd(self._key(key + "fast"), {member: fast})
        if after.state is ResourceState.ACTIVE or after.until is None:
            pipe.zrem(self._key(key + "waiting"), member)
        else:
            pipe.zadd(self._key(key + "waiting"), {member: after.until})

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
        """See ``ResourcePools.lend_by``: one script call (``lua/pool_lend.lua``)."""
        updates.check_rng_value(rng_value)
        args = [
            kind.value, updates.ID_LETTER[kind], repr(self._clock.now()), strategy.value,
            sticky_id or "", "" if max_in_use is None else max_in_use, repr(rng_value),
            updates.normal_region(region) or "", holder or "", *updates.site_suffixes(site),
        ]  # fmt: skip
        reply = await self._pool_script("pool_lend", args)
        if reply is None:
            return None
        resource_id, live, specrev = (str(part) if part is not None else None for part in reply)
        cache = self._cache(kind)
        if specrev is None or specrev != cache.specrev or resource_id not in cache.specs:
            cache = await self._specs(kind)
        if resource_id is None or live is None or resource_id not in cache.specs:
            return None  # removed between the two calls: it was lent, and is gone
        return cache.resource(resource_id, live)

    async def give_back(
        self, resource_id: str, use: Use, decide: Decider, *, holder: str | None = None
    ) -> Resource | None:
        """See ``ResourcePools.give_back``: read, decide, compare-and-set (``pool_give.lua``,
        which takes the one off ``in_use`` and the hold), again from the read when anything but
        lends and releases changed the resource meanwhile."""
        kind = updates.kind_of_id(resource_id)
        if kind is None:
            return None
        decide = updates.keeping_in_use(decide)
        for attempt in range(_MAX_TRIES):
            read = await self._read_for_give(kind, resource_id)
            if read is None:
                return None
            spec, live, hrev, history = read
            stored = resource_from_live(resource_id, spec, live)
            after, kept = updates.given_back(stored, list(history), use, decide, self._clock.now())
            args = [
                resource_id, kind.value, updates.ID_LETTER[kind], live, hrev, live_to_json(after),
                "1" if updates.is_state_changed(stored, after) else "0", holder or "",
                *[history.get(id(u)) or use_to_json(u) for u in kept],
            ]  # fmt: skip
            reply = await self._pool_script("pool_give", args)
            if reply == 0:
                return None
            if reply != -1:
                return resource_from_live(resource_id, spec, str(reply))
            await _pause(attempt)
        raise _contended(resource_id)

    async def _read_for_give(
        self, kind: ResourceKind, resource_id: str
    ) -> tuple[ResourceSpec, str, str, _History] | None:
        """The spec, the live record's text, the history's revision and the history."""
        key = self._key(f"res:{resource_id}")
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hget(self._key(f"pool:{kind.value}:specs"), resource_id)
            pipe.get(key)
            pipe.get(f"{key}:hrev")
            pipe.lrange(f"{key}:uses", 0, -1)
            with self._mapped():
                spec, live, hrev, texts = await pipe.execute()
        if spec is None or live is None:
            return None
        return resource_spec_from_json(spec), str(live), str(hrev or "0"), self._history(texts)

    def _history(self, texts: Sequence[str]) -> _History:
        if self._pool_uses is None:
            self._pool_uses = _UseCache()
        return _History(texts, self._pool_uses)

    async def resource_uses(self, resource_id: str) -> list[Use]:
        """See ``ResourcePools.resource_uses``."""
        with self._mapped():
            texts = cast(
                list[str], await self._client.lrange(self._key(f"res:{resource_id}:uses"), 0, -1)
            )
        return [use_from_json(t) for t in texts]

    async def resource_holders(self) -> dict[str, int]:
        """See ``ResourcePools.resource_holders``: one hash (``pool:holders``)."""
        with self._mapped():
            found = cast(dict[str, str], await self._client.hgetall(self._key("pool:holders")))
        return {holder: int(n) for holder, n in found.items() if int(n) > 0}

    async def release_holder(self, holder: str) -> int:
        """See ``ResourcePools.release_holder``: one script (``lua/pool_release.lua``)."""
        kinds = [part for kind, letter in updates.ID_LETTER.items() for part in (letter, kind)]
        args = [holder, repr(self._clock.now()), *kinds]
        return int(await self._pool_script("pool_release", args))

    async def set_resource_state(
        self, resource_id: str, state: ResourceState, until: float | None
    ) -> bool:
        """See ``ResourcePools.set_resource_state``."""
        now = self._clock.now()
        return await self._update(resource_id, lambda r: updates.with_state(r, state, until, now))

    async def reset_resource(self, resource_id: str) -> bool:
        """See ``ResourcePools.reset_resource``: one script (``lua/pool_reset.lua``) writes the
        reset record, clears the history and forgets the holds. The record is the one read
        reset, whatever was lent since: a reset keeps only the id, spec and ``created_at``."""
        kind = updates.kind_of_id(resource_id)
        stored = await self.get_resource(resource_id)
        if kind is None or stored is None:
            return False
        reset = live_to_json(updates.reset(stored, self._clock.now()))
        args = [resource_id, kind.value, updates.ID_LETTER[kind], reset]
        return bool(await self._pool_script("pool_reset", args))

    async def _update(self, resource_id: str, change: Callable[[Resource], Resource]) -> bool:
        """One optimistic read-modify-write of a resource's live record; False when gone."""
        kind = updates.kind_of_id(resource_id)
        if kind is None:
            return False
        for attempt in range(_MAX_TRIES):
            async with self._client.pipeline(transaction=True) as pipe:
                with self._mapped(), contextlib.suppress(rex.WatchError):
                    await pipe.watch(self._key(f"res:{resource_id}"))
                    read = await self._read_one(kind, resource_id)
                    if read is None:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._queue_live(pipe, kind, read, change(read))
                    await pipe.execute()
                    return True
            await _pause(attempt)
        raise _contended(resource_id)

    async def pools_version(self) -> int:
        """See ``ResourcePools.pools_version``."""
        with self._mapped():
            value = await self._client.get(self._key("pool:version"))
        return int(value or 0)


def _contended(what: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"the pool {what} changed under every one of {_MAX_TRIES} tries; too many workers "
        "write it at once"
    )
