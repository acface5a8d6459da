"""Store fixtures: every test gets a fresh store of each backend, in its own namespace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.store import Store, open_store
from tests.fixtures.redis_server import RedisServer

BACKENDS = ["sqlite", "redis"]

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture
def clock() -> FakeClock:
    """The store's time, moved only by the test."""
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming a store nobody else uses: its own SQLite file or its own Redis namespace."""
    if request.param == "sqlite":
        (tmp_path / "jobs").mkdir()  # a store's directory is not created for it
        return f"sqlite:///{tmp_path}/jobs/store.db"
    server: RedisServer = request.getfixturevalue("redis_server")
    return f"{server.url}?namespace=test-{uuid.uuid4().hex}"


@pytest.fixture
async def open_more(store_url: str, clock: FakeClock) -> AsyncIterator[Opener]:
    """Opens further stores on the same URL (another worker process's view), closed at the end."""
    opened: list[Store] = []

    async def opener() -> Store:
        opened.append(await open_store(store_url, clock))
        return opened[-1]

    yield opener
    for extra in opened:
        await extra.close()


@pytest.fixture
async def store(open_more: Opener) -> Store:
    """The store under test."""
    return await open_more()
