"""The pools for ``hauler get``: the store's proxies and accounts, when the store has any.

``get`` runs without a server and, for plain files, without touching the store; the store is
opened on the first job only when it exists already (a SQLite file that is not there holds no
pools, and is not created for the asking), and its pools are used when they hold anything.

``get`` lends without a holder (``PoolLender``'s ``holder`` None): it beats no worker record, so
holds under its name would look dead to every worker's sweep (``pools.holds``) while it runs.
Its lends are therefore not tracked: a ``get`` killed mid-run (-9) leaves its proxies' and
accounts' ``in_use`` up until ``hauler proxy reset`` (or ``account reset``) zeroes them.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType

from hauler.config import PoolSettings
from hauler.local.infocache import LazyInfoCache
from hauler.models import JobSpec
from hauler.pipeline.acquire import FixedResources, PooledResources, ResourceBroker, pool_rules
from hauler.pipeline.handler import Resources
from hauler.pools.lender import PoolLender

SQLITE_PREFIX = "sqlite:///"


class LazyPools:
    """A ``ResourceBroker`` that decides on the first job: the pools of the store behind
    ``cache`` when it exists and holds resources, else no proxy and no account."""

    def __init__(self, cache: LazyInfoCache, store_url: str, settings: PoolSettings) -> None:
        self._cache = cache
        self._store_url = store_url
        self._settings = settings
        self._broker: ResourceBroker | None = None
        self._lock = asyncio.Lock()

    @property
    def can_rotate(self) -> bool:
        """True once the store's pools are in use (a run asks before it can fail)."""
        return self._broker is not None and self._broker.can_rotate

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        """The pools' resources for one run (no pools: none)."""
        return _Deferred(self, spec)

    async def broker(self) -> ResourceBroker:
        """The broker this run uses, decided once."""
        async with self._lock:
            if self._broker is None:
                self._broker = await self._decide()
            return self._broker

    async def _decide(self) -> ResourceBroker:
        if not store_may_exist(self._store_url):
            return FixedResources()
        store = await self._cache.store()
        if store is None or not await store.list_resources():
            return FixedResources()
        return PooledResources(PoolLender(store, pool_rules(self._settings)))


class _Deferred:
    """``acquire``'s context manager, once the broker is known."""

    def __init__(self, pools: LazyPools, spec: JobSpec) -> None:
        self._pools = pools
        self._spec = spec
        self._inner: AbstractAsyncContextManager[Resources] | None = None

    async def __aenter__(self) -> Resources:
        broker = await self._pools.broker()
        self._inner = broker.acquire(self._spec)
        return await self._inner.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._inner is not None
        return await self._inner.__aexit__(exc_type, exc, traceback)


def store_may_exist(store_url: str) -> bool:
    """False for a SQLite store whose file does not exist (nothing to lend, nothing created)."""
    if not store_url.startswith(SQLITE_PREFIX):
        return True
    return Path(store_url.removeprefix(SQLITE_PREFIX)).exists()
