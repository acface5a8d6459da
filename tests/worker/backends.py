"""Store URLs for both backends, each test in its own namespace (SQLite file / Redis prefix)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hauler.store import Store, open_store
from tests.fixtures.redis_server import RedisServer

BACKENDS = ["sqlite", "redis"]


def make_store_url(backend: str, tmp_path: Path, redis: RedisServer | None) -> str:
    """A fresh, empty store for one test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    assert redis is not None
    return f"{redis.url}?namespace=t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store on each backend (the Redis server is shared, the namespace not)."""
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return make_store_url(request.param, tmp_path, redis)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """The store at ``store_url``, opened with the real clock, closed after the test."""
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
