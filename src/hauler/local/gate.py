"""The request gate of ``hauler get``: the store's per-host budgets when the store exists.

Like the pools (``local.pools``), ``get`` does not create a store for the asking: a SQLite file
that is not there holds no limits, and then every request goes at once. Decided at the first
request, once.
"""

from __future__ import annotations

import asyncio

from hauler.config import HostSettings
from hauler.gate import OPEN, RequestGate, Ticket
from hauler.local.infocache import LazyInfoCache
from hauler.local.pools import store_may_exist
from hauler.pools.hostgate import HostGate


class LazyGate:
    """A ``gate.RequestGate`` that is ``HostGate`` over the store behind ``cache`` when that
    store exists, else ``gate.OPEN``; ``aclose`` it before the cache."""

    def __init__(self, cache: LazyInfoCache, store_url: str, settings: HostSettings) -> None:
        self._cache = cache
        self._store_url = store_url
        self._settings = settings
        self._gate: RequestGate | None = None
        self._lock = asyncio.Lock()

    async def enter(self, url: str, proxy: str | None) -> Ticket:
        """Wait until the request may go (``gate.RequestGate``)."""
        gate = self._gate or await self._decide()
        return await gate.enter(url, proxy)

    async def _decide(self) -> RequestGate:
        async with self._lock:
            if self._gate is None:
                store = await self._cache.store() if store_may_exist(self._store_url) else None
                self._gate = OPEN if store is None else HostGate(store, self._settings)
            return self._gate

    async def aclose(self) -> None:
        """Give back what the requests still hold."""
        if isinstance(self._gate, HostGate):
            await self._gate.aclose()
