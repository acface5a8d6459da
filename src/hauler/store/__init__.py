"""The store by role (``JobStore``, ``FleetControl``, ``WorkerRegistry``, ``InfoCache``,
``ResourcePools``; ``Store`` holds them all); ``open_store(url)`` picks the backend by URL
scheme."""

from __future__ import annotations

from hauler.clock import Clock, SystemClock
from hauler.store.base import (
    AddResult,
    Chooser,
    Completion,
    Decider,
    FleetControl,
    InfoCache,
    JobFilter,
    JobStore,
    ResourcePools,
    Store,
    WorkerRegistry,
)

__all__ = [
    "AddResult",
    "Chooser",
    "Completion",
    "Decider",
    "FleetControl",
    "InfoCache",
    "JobFilter",
    "JobStore",
    "ResourcePools",
    "Store",
    "WorkerRegistry",
    "open_store",
]


async def open_store(url: str, clock: Clock | None = None) -> Store:
    """Open ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``redis://…`` or ``rediss://…``.

    The backend module is imported only when used. Raises ``BadRequest`` for an unknown scheme
    and ``StoreUnavailable`` when the store cannot be reached.
    """
    clock = clock or SystemClock()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from hauler.store.sqlite import SqliteStore

        return await SqliteStore.open(url, clock)
    if scheme in ("redis", "rediss", "unix"):
        from hauler.store.redis import RedisStore

        return await RedisStore.open(url, clock)
    from hauler.errors import BadRequest
    from hauler.redact import printable, redact_url

    shown = printable(redact_url(url))  # never echo a password
    raise BadRequest(f"unknown store URL {shown!r}: use sqlite:///path.db or redis://host:port/db")
