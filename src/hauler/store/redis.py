"""The shared job store: Redis (``redis://[:password@]host:port/db?namespace=NAME``).

Every key of a namespace shares the hash tag ``{hauler:NAME}``. Each job is a hash; the
``queued``/``retrying``/``running``/``done``/``failed`` sorted sets index them by state; a hash
maps dedupe keys to ids and another keeps the counts per state. Every change of a job's state
is one Lua script (``store/lua``), so it is atomic and the counts move with it.

The info cache: a put writes ``info:blob:ID`` (the compressed info) and, per key,
``info:key:KEY`` = ``EXPIRES_AT|ID``, in one MULTI, all with the put's TTL as a Redis TTL (its
garbage collector: Redis deletes them on its own). Reads check ``EXPIRES_AT`` against the
store's clock, so expiry follows the injected clock exactly.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from importlib.resources import files
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from hauler.clock import Clock
from hauler.errors import LeaseLost, StoreUnavailable
from hauler.models import Job, JobError, JobSpec, JobState, WorkerInfo
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
from hauler.store.redis_hosts import RedisHosts
from hauler.store.redis_pools import RedisPools

_SCRIPTS = (
    "add", "claim", "heartbeat", "complete", "fail", "release", "requeue", "clear",
    "worker_beat", "save_result",
)  # fmt: skip
# claim.lua bounds: how many due retries / expired leases one claim moves, and how many
# affinity-held jobs it looks past before giving up for this call.
_SWEEP_LIMIT = 1000
_SCAN_LIMIT = 1000
_BATCH = 500  # ids per requeue/clear script call and per read pipeline
# The order in which claim.lua returns a claimed job's fields (its FIELDS table).
_CLAIMED_FIELDS = (
    "id", "key", "spec", "state", "priority", "attempts", "max_attempts", "ready_at",
    "created_at", "updated_at", "token", "lease_until", "worker", "node", "error_class",
    "error_message", "error_at", "result",
)  # fmt: skip
_FILTER_FIELDS = ("state", "error_class", "host", "updated_at", "collection")
_ALL = JobFilter()
# Replies that mean "this server cannot serve us right now", not "this command is wrong".
_UNAVAILABLE_CODES = frozenset(
    {"MISCONF", "READONLY", "OOM", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}
)
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _load_scripts(client: aioredis.Redis) -> dict[str, AsyncScript]:
    lua = files("hauler.store").joinpath("lua")
    common = lua.joinpath("common.lua").read_text(encoding="utf-8")
    return {
        name: client.register_script(common + lua.joinpath(f"{name}.lua").read_text("utf-8"))
        for name in _SCRIPTS
    }


def _reconnects() -> Retry:
    """Retry a command whose connection broke (e.g. a pooled connection to a Redis that
    restarted) a few times on a fresh connection, then give up with ``StoreUnavailable``.
    If a script ran but its reply was lost, the retry finds the job already moved and
    reports it lost: fencing keeps that safe (never a second completion)."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 3, supported_errors=(rex.ConnectionError,))


def _client(url: str, decode: bool) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_connect_timeout=5.0,
        socket_timeout=30.0,
        retry=_reconnects(),
        retry_on_error=[rex.ConnectionError],
    )


def _split_url(url: str) -> tuple[str, str, str]:
    """(URL for redis-py without our query, namespace, ``host:port`` safe to show)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    namespace = next((v for k, v in query if k == "namespace"), "") or "hauler"
    if not _NAMESPACE.fullmatch(namespace):
        # Braces would break the {hash tag} that keeps a namespace in one cluster slot.
        raise ValueError(f"bad namespace {namespace!r}: use letters, digits and . _ : -")
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    if parts.scheme == "unix":
        where = parts.path
    return urlunsplit(parts._replace(query=rest)), namespace, where


def _id_of(member: str) -> str:
    """The job id in a set member (queued members are ``READY_AT|000000000042``)."""
    return str(int(member.rsplit("|", 1)[-1]))


def _matches(flt: JobFilter, fields: Sequence[str | None]) -> bool:
    state, reason, host, updated_at, collection = fields
    return not (
        state is None
        or (flt.reason is not None and reason != flt.reason)
        or (flt.host is not None and host != flt.host.lower())
        or (flt.since is not None and float(updated_at or 0) < flt.since)
        or (flt.collection is not None and collection != flt.collection)
    )


class RedisStore(RedisPools, RedisHosts):
    """The ``Store`` contract over one Redis namespace (see ``hauler.store.base``)."""

    def __init__(
        self, clients: tuple[aioredis.Redis, aioredis.Redis], namespace: str, where: str,
        clock: Clock,
    ) -> None:  # fmt: skip
        # The second client reads bytes (the info cache's compressed blobs); it connects only
        # when used.
        self._client, self._bytes_client = clients
        self._prefix = "{hauler:" + namespace + "}"
        self._where = where
        self._clock = clock
        self._scripts = _load_scripts(self._client)
        self._closed = False

    @classmethod
    async def open(cls, url: str, clock: Clock) -> RedisStore:
        """Connect to ``url`` and check the server answers; raises ``StoreUnavailable``."""
        client_url, namespace, where = _split_url(url)
        clients = (_client(client_url, decode=True), _client(client_url, decode=False))
        store = cls(clients, namespace, where, clock)
        try:
            with store._mapped():
                await clients[0].ping()
        except BaseException:
            await store.close()
            raise
        return store

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        """Map redis-py's connection failures to ``StoreUnavailable`` naming host:port only
        (never the URL: it may hold a password)."""
        if self._closed:
            raise StoreUnavailable(f"the Redis store at {self._where} is closed")
        try:
            yield
        except rex.AuthenticationError as exc:
            raise StoreUnavailable(
                f"Redis at {self._where} refused our credentials; check the password in --store"
            ) from exc
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            raise StoreUnavailable(
                f"cannot reach Redis at {self._where} ({type(exc).__name__}); check that "
                "redis-server runs there and the host, port and db in --store"
            ) from exc
        except rex.ResponseError as exc:
            code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
            if code not in _UNAVAILABLE_CODES:
                raise
            raise StoreUnavailable(
                f"Redis at {self._where} cannot take writes now ({code}); check its log "
                "(disk full, replica, out of memory)"
            ) from exc

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    async def _script(self, name: str, args: Sequence[Any]) -> Any:
        with self._mapped():
            return await self._scripts[name](keys=[self._prefix], args=list(args))

    async def add(self, specs: Sequence[JobSpec]) -> AddResult:
        """See ``Store.add``: one script call for the whole batch."""
        args: list[Any] = [repr(self._clock.now())]
        for s in specs:
            args += [s.dedupe_key, spec_to_json(s), s.priority, s.max_attempts, s.host,
                     s.collection]  # fmt: skip
        ids = [str(i) for i in await self._script("add", args)] if specs else []
        return AddResult(ids=ids, skipped=len(specs) - len(ids))

    async def claim(
        self, worker: str, node: str, n: int, lease_s: float, affinity_s: float = 30.0
    ) -> list[Job]:
        """See ``Store.claim``."""
        if n <= 0:
            return []
        now = self._clock.now()
        args = [repr(now), worker, node, n, repr(now + lease_s), repr(now - affinity_s),
                _SWEEP_LIMIT, _SCAN_LIMIT, MAX_LOST_LEASES,
                LOST_MESSAGE]  # fmt: skip
        rows = await self._script("claim", args)
        return [job_from_fields(dict(zip(_CLAIMED_FIELDS, row, strict=True))) for row in rows]

    async def heartbeat(self, leases: Sequence[tuple[str, int]], lease_s: float) -> list[str]:
        """See ``Store.heartbeat``."""
        if not leases:
            return []
        args: list[Any] = [repr(self._clock.now() + lease_s)]
        for job_id, token in leases:
            args += [job_id, str(token)]
        return [str(i) for i in await self._script("heartbeat", args)]

    async def complete(self, done: Sequence[Completion]) -> list[str]:
        """See ``Store.complete``."""
        if not done:
            return []
        args: list[Any] = [repr(self._clock.now())]
        for c in done:
            args += [c.job_id, str(c.token), result_to_json(c.result)]
        return [str(i) for i in await self._script("complete", args)]

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
        retry = "" if retry_at is None else repr(retry_at)
        args = [repr(self._clock.now()), job_id, str(token), error.error_class, error.message,
                repr(error.at), retry, "1" if is_counted else "0"]  # fmt: skip
        state = await self._script("fail", args)
        if not state:
            raise LeaseLost(f"job {job_id}: token {token} is no longer current")
        return JobState(state)

    async def save_result(self, job_id: str, token: int, result: Mapping[str, Any]) -> None:
        """See ``Store.save_result``."""
        args = [repr(self._clock.now()), job_id, str(token), result_to_json(result)]
        if not await self._script("save_result", args):
            raise LeaseLost(f"job {job_id}: token {token} is no longer current")

    async def release(self, job_id: str, token: int) -> None:
        """See ``Store.release``."""
        args = [repr(self._clock.now()), job_id, str(token)]
        if not await self._script("release", args):
            raise LeaseLost(f"job {job_id}: token {token} is no longer current")

    async def get(self, job_id: str) -> Job | None:
        """See ``Store.get``."""
        with self._mapped():
            fields = cast(dict[str, str], await self._client.hgetall(self._key(f"job:{job_id}")))
        return job_from_fields(fields) if fields else None

    async def _scan_ids(self, flt: JobFilter, states: Sequence[JobState]) -> list[str]:
        """Ids matching ``flt`` in ``states``, most recently updated first, at most
        ``flt.limit``: a scan over each state's set (operator commands only)."""
        found: list[tuple[float, int, str]] = []
        for state in states:
            members = [m async for m in self._members(state)]
            for start in range(0, len(members), _BATCH):
                ids = [_id_of(m) for m in members[start : start + _BATCH]]
                found += await self._filter_ids(flt, state, ids)
        found.sort(reverse=True)
        return [job_id for _, _, job_id in found[: flt.limit]]

    async def _members(self, state: JobState) -> AsyncIterator[str]:
        with self._mapped():
            async for member, _score in self._client.zscan_iter(self._key(state.value)):
                yield member

    async def _filter_ids(
        self, flt: JobFilter, state: JobState, ids: list[str]
    ) -> list[tuple[float, int, str]]:
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self._key(f"job:{job_id}"), list(_FILTER_FIELDS))
            with self._mapped():
                rows = await pipe.execute()
        return [
            (float(row[3]), int(job_id), job_id)
            for job_id, row in zip(ids, rows, strict=True)
            if row[0] == state.value and _matches(flt, row)
        ]

    async def list_jobs(self, flt: JobFilter = _ALL) -> list[Job]:
        """See ``Store.list_jobs``."""
        ids = await self._scan_ids(flt, [flt.state] if flt.state else list(JobState))
        jobs: list[Job] = []
        for start in range(0, len(ids), _BATCH):
            async with self._client.pipeline(transaction=False) as pipe:
                for job_id in ids[start : start + _BATCH]:
                    pipe.hgetall(self._key(f"job:{job_id}"))
                with self._mapped():
                    rows = await pipe.execute()
            jobs += [job_from_fields(row) for row in rows if row]
        return jobs

    async def counts(self) -> dict[JobState, int]:
        """See ``Store.counts``: one HGETALL of the counts hash the scripts keep."""
        with self._mapped():
            found = await self._client.hgetall(self._key("counts"))
        return {state: int(found.get(state.value, 0)) for state in JobState}

    async def requeue(self, flt: JobFilter) -> int:
        """See ``Store.requeue``."""
        state = flt.state or JobState.FAILED
        if state is JobState.RUNNING:
            raise ValueError("running jobs cannot be requeued; stop their workers first")
        ids = await self._scan_ids(flt, [state])
        moved = 0
        for start in range(0, len(ids), _BATCH):
            args = [repr(self._clock.now()), state.value, *ids[start : start + _BATCH]]
            moved += int(await self._script("requeue", args))
        return moved

    async def clear(self, flt: JobFilter) -> int:
        """See ``Store.clear``."""
        states = [flt.state] if flt.state else [s for s in JobState if s is not JobState.RUNNING]
        deleted = 0
        for state in states:
            ids = await self._scan_ids(flt, [state])
            for start in range(0, len(ids), _BATCH):
                args = [state.value, *ids[start : start + _BATCH]]
                deleted += int(await self._script("clear", args))
        return deleted

    async def set_paused(self, paused: bool, worker: str | None = None) -> None:
        """See ``Store.set_paused``; resuming the fleet also resumes every paused worker."""
        fleet, named = self._key("paused"), self._key("paused_workers")
        with self._mapped():
            if worker is None and paused:
                await self._client.set(fleet, "1")
            elif worker is None:
                await self._client.delete(fleet, named)
            elif paused:
                await self._client.sadd(named, worker)
            else:
                await self._client.srem(named, worker)

    async def is_paused(self, worker: str) -> bool:
        """See ``Store.is_paused``."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.exists(self._key("paused"))
            pipe.sismember(self._key("paused_workers"), worker)
            with self._mapped():
                fleet, named = await pipe.execute()
        return bool(fleet) or bool(named)

    async def paused_workers(self) -> tuple[bool, list[str]]:
        """See ``Store.paused_workers``."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.exists(self._key("paused"))
            pipe.smembers(self._key("paused_workers"))
            with self._mapped():
                fleet, named = await pipe.execute()
        return bool(fleet), sorted(named)

    async def request_stop(self) -> float:
        """See ``Store.request_stop``."""
        now = self._clock.now()
        with self._mapped():
            await self._client.set(self._key("stop_at"), repr(now))
        return now

    async def stop_requested_at(self) -> float | None:
        """See ``Store.stop_requested_at``."""
        with self._mapped():
            value = await self._client.get(self._key("stop_at"))
        return None if value is None else float(value)

    async def beat_worker(self, info: WorkerInfo, ttl_s: float) -> None:
        """See ``Store.beat_worker``; also forgets workers whose heartbeat ran out."""
        args = [repr(self._clock.now()), info.name, worker_to_json(info),
                repr(info.seen_at + ttl_s)]  # fmt: skip
        await self._script("worker_beat", args)

    async def remove_worker(self, name: str) -> None:
        """See ``Store.remove_worker``."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._key("workers"), name)
            pipe.zrem(self._key("workers_exp"), name)
            with self._mapped():
                await pipe.execute()

    async def workers(self) -> list[WorkerInfo]:
        """See ``Store.workers``."""
        with self._mapped():
            expiry = self._key("workers_exp")
            names = cast(
                list[str],
                await self._client.zrangebyscore(expiry, f"({self._clock.now()!r}", "+inf"),
            )
            infos = await self._client.hmget(self._key("workers"), names) if names else []
        found = [worker_from_json(str(text)) for text in infos if text]
        return sorted(found, key=lambda w: w.name)

    async def get_info(self, key: str) -> dict[str, Any] | None:
        """See ``InfoCache.get_info``: the pointer, then the blob it names (two round trips;
        a blob gone in between, dropped or expired, is a miss)."""
        with self._mapped():
            pointer = await self._client.get(self._key(f"info:key:{key}"))
            if pointer is None:
                return None
            expires_at, _, blob_id = str(pointer).partition("|")
            if float(expires_at) <= self._clock.now():
                return None
            blob = cast(
                bytes | None, await self._bytes_client.get(self._key(f"info:blob:{blob_id}"))
            )
        return None if blob is None else info_from_blob(blob)

    async def put_info(self, keys: Sequence[str], info: dict[str, Any], ttl_s: float) -> None:
        """See ``InfoCache.put_info``. The Redis TTL is relative (``PX``): it collects garbage
        on Redis's own time, whatever the store's clock says; expiry itself is checked against
        the clock. A blob whose keys were all overwritten waits out its TTL."""
        names = info_keys(keys, ttl_s)
        blob, blob_id = info_to_blob(info), uuid.uuid4().hex
        pointer = f"{self._clock.now() + ttl_s!r}|{blob_id}"
        ttl_ms = math.ceil(ttl_s * 1000)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._key(f"info:blob:{blob_id}"), blob, px=ttl_ms)
            for name in names:
                pipe.set(self._key(f"info:key:{name}"), pointer, px=ttl_ms)
            with self._mapped():
                await pipe.execute()

    async def drop_info(self, key: str) -> None:
        """See ``InfoCache.drop_info``: deletes the key and its blob; the put's other keys then
        point at nothing (a miss) until their own TTL removes them."""
        pointer_key = self._key(f"info:key:{key}")
        with self._mapped():
            pointer = await self._client.get(pointer_key)
            if pointer is not None:
                blob_key = self._key(f"info:blob:{str(pointer).partition('|')[2]}")
                await self._client.delete(pointer_key, blob_key)

    async def close(self) -> None:
        """See ``Store.close``; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._client.aclose()
            await self._bytes_client.aclose()
