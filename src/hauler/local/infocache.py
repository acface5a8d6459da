"""``get``'s media info cache: the store that ``--store``/``HAULER_STORE`` names (the embedded
one by default), opened only when a media job first asks, so a ``get`` of plain files never
touches it.

A store that cannot be opened costs the cache, not the download: the job extracts as if
nothing were cached, and one warning says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from hauler.errors import HaulerError
from hauler.store import Store, open_store

_log = logging.getLogger(__name__)


class LazyInfoCache:
    """An ``InfoCache`` over the store at ``url``, opened on first use; ``close`` it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._store: Store | None = None
        self._failed = False
        self._lock = asyncio.Lock()

    async def store(self) -> Store | None:
        """The store, opened now if it was not (None when it cannot be)."""
        return await self._opened()

    async def _opened(self) -> Store | None:
        async with self._lock:
            if self._store is None and not self._failed:
                try:
                    self._store = await open_store(self._url)
                except HaulerError as exc:
                    self._failed = True
                    _log.warning("media infos are not cached: %s", exc.message)
        return self._store

    async def get_info(self, key: str) -> dict[str, Any] | None:
        """The cached info under ``key``, None when absent (or the store is unusable)."""
        store = await self._opened()
        if store is None:
            return None
        try:
            return await store.get_info(key)
        except HaulerError as exc:
            _log.warning("media info cache unreadable: %s", exc.message)
            return None

    async def put_info(self, keys: Sequence[str], info: dict[str, Any], ttl_s: float) -> None:
        """Cache ``info`` under ``keys`` (nothing when the store is unusable)."""
        store = await self._opened()
        if store is None:
            return
        try:
            await store.put_info(keys, info, ttl_s)
        except HaulerError as exc:
            _log.warning("media info not cached: %s", exc.message)

    async def drop_info(self, key: str) -> None:
        """Forget ``key``'s info."""
        store = await self._opened()
        if store is not None:
            await store.drop_info(key)

    async def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            await self._store.close()
            self._store = None
