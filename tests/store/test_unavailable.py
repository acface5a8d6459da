"""A store that cannot be reached fails with ``StoreUnavailable`` and a message that says
what to check, without leaking a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.errors import StoreUnavailable
from hauler.models import JobSpec
from hauler.store import open_store
from tests.fixtures.redis_server import RedisServer, free_port


async def test_redis_on_a_closed_port_names_host_and_port_not_password() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(f"redis://:s3cret-pw@127.0.0.1:{port}/0", FakeClock())
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "redis-server" in message
    assert "s3cret-pw" not in message


async def test_redis_that_goes_away_raises_store_unavailable(
    dedicated_redis: RedisServer,
) -> None:
    store = await open_store(dedicated_redis.url + "?namespace=gone", FakeClock())
    try:
        dedicated_redis.kill()
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{dedicated_redis.port}"):
            await store.counts()
        dedicated_redis.start()
        assert sum((await store.counts()).values()) == 0
    finally:
        await store.close()


async def test_sqlite_under_a_regular_file_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    path = blocker / "store.db"
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(f"sqlite:///{path}", FakeClock())
    assert str(path) in str(caught.value) and "writable" in str(caught.value)


async def test_sqlite_file_that_is_not_a_store_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database, not at all" * 100)
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(f"sqlite:///{path}", FakeClock())
    assert str(path) in str(caught.value)


async def test_redis_that_refuses_writes_raises_store_unavailable(
    dedicated_redis: RedisServer,
) -> None:
    import redis

    store = await open_store(dedicated_redis.url + "?namespace=ro", FakeClock())
    with redis.Redis(port=dedicated_redis.port) as raw:
        raw.replicaof("127.0.0.1", str(free_port()))  # a read-only replica of nobody
        try:
            with pytest.raises(StoreUnavailable, match="READONLY"):
                await store.add([JobSpec(url="http://a.example/x")])
        finally:
            raw.replicaof("NO", "ONE")
    try:
        assert (await store.add([JobSpec(url="http://a.example/x")])).added == 1
    finally:
        await store.close()
