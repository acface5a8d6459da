"""The contract of ``InfoCache``: media metadata under several keys, with a TTL; run on SQLite
and Redis, and how each backend stores it (compressed, once) and collects the expired.

Each test has a store of its own (its own SQLite file, its own Redis namespace) on a FakeClock:
entries expire because the test moves the clock, never because it sleeps (fixtures:
``tests/fixtures/stores.py``).
"""

from __future__ import annotations

import base64
import json
import math
import random
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from hauler.clock import FakeClock
from hauler.store import InfoCache, open_store
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.stores import Opener
from tests.store.contract.infos import youtube_like_info

TTL_S = 6 * 3600.0
URL_KEY = "url:https://www.youtube.com/watch?v=dQw4w9WgXcQ"
ID_KEY = "id:youtube:dQw4w9WgXcQ"


def info(title: str = "a video", **more: Any) -> dict[str, Any]:
    return {"id": "dQw4w9WgXcQ", "title": title, **more}


# --- the contract, on both backends ---------------------------------------------------------


async def test_an_info_reads_back_equal_unicode_nested_and_all(store: InfoCache) -> None:
    stored = info(
        "Ünïcødé 標題 — 🎬 \u202e\x00 and a lone \ud800 surrogate",
        formats=[{"format_id": "22", "height": 720, "tbr": 1234.5678, "drm": False,
                  "http_headers": {"Cookie": None, "X": ["a", {"b": [1, 2, [3]]}]}}],
        big=2**70, negative=-1e-300, empty={}, none=None, pair=("a", 1),
    )  # fmt: skip
    await store.put_info([URL_KEY], stored, TTL_S)
    got = await store.get_info(URL_KEY)
    assert got == json.loads(json.dumps(stored))  # equal, the tuple a list
    assert got is not None and got["pair"] == ["a", 1] and got["big"] == 2**70
    got["title"] = "changed by the caller"
    assert await store.get_info(URL_KEY) == json.loads(json.dumps(stored))


async def test_a_missing_key_is_none(store: InfoCache) -> None:
    assert await store.get_info(URL_KEY) is None
    await store.put_info([URL_KEY], info(), TTL_S)
    assert await store.get_info(URL_KEY[:-1]) is None
    assert await store.get_info(URL_KEY + "x") is None
    assert await store.get_info("") is None


async def test_one_info_under_several_keys(store: InfoCache, open_more: Opener) -> None:
    await store.put_info([URL_KEY, ID_KEY, URL_KEY], info("both"), TTL_S)
    assert await store.get_info(URL_KEY) == info("both")
    assert await store.get_info(ID_KEY) == info("both")
    other = await open_more()  # another worker on the same store sees it
    assert await other.get_info(ID_KEY) == info("both")


async def test_every_key_expires_at_the_ttl_and_not_before(
    store: InfoCache, clock: FakeClock
) -> None:
    await store.put_info([URL_KEY, ID_KEY], info(), 60.0)
    clock.advance(59.999)
    assert await store.get_info(URL_KEY) == info()
    assert await store.get_info(ID_KEY) == info()
    clock.advance(0.001)
    assert await store.get_info(URL_KEY) is None
    assert await store.get_info(ID_KEY) is None
    clock.advance(3600)
    assert await store.get_info(ID_KEY) is None


async def test_a_put_again_replaces_the_info_and_refreshes_the_ttl(
    store: InfoCache, clock: FakeClock
) -> None:
    await store.put_info([URL_KEY, ID_KEY], info("old"), 60.0)
    clock.advance(50)
    await store.put_info([ID_KEY], info("new"), 60.0)
    clock.advance(30)  # 80 s after the first put, 30 s after the second
    assert await store.get_info(URL_KEY) is None
    assert await store.get_info(ID_KEY) == info("new")
    clock.advance(29.5)
    assert await store.get_info(ID_KEY) == info("new")
    clock.advance(0.5)
    assert await store.get_info(ID_KEY) is None


async def test_a_shorter_ttl_on_a_put_again_shortens_it(store: InfoCache, clock: FakeClock) -> None:
    await store.put_info([URL_KEY], info("long"), 3600.0)
    await store.put_info([URL_KEY], info("short"), 10.0)
    clock.advance(10)
    assert await store.get_info(URL_KEY) is None


async def test_drop_forgets_the_info_under_every_key_of_its_put(store: InfoCache) -> None:
    await store.put_info([URL_KEY, ID_KEY], info("stale"), TTL_S)
    await store.put_info(["url:other"], info("other"), TTL_S)
    await store.drop_info(ID_KEY)
    assert await store.get_info(ID_KEY) is None
    assert await store.get_info(URL_KEY) is None  # its signed URLs are as stale
    assert await store.get_info("url:other") == info("other")
    await store.drop_info(ID_KEY)  # dropping twice, or a key never put, does nothing
    await store.drop_info("url:never")
    await store.put_info([ID_KEY], info("fresh"), TTL_S)
    assert await store.get_info(ID_KEY) == info("fresh")


async def test_drop_leaves_keys_a_later_put_gave_another_info(store: InfoCache) -> None:
    await store.put_info([URL_KEY, ID_KEY], info("first"), TTL_S)
    await store.put_info([ID_KEY, "url:short"], info("second"), TTL_S)
    await store.drop_info(URL_KEY)
    assert await store.get_info(URL_KEY) is None
    assert await store.get_info(ID_KEY) == info("second")
    await store.drop_info("url:short")
    assert await store.get_info(ID_KEY) is None


async def test_a_large_info_round_trips(store: InfoCache) -> None:
    rng = random.Random(7)
    noise = base64.b64encode(rng.randbytes(768 * 1024)).decode()  # 1 MiB, incompressible
    large = youtube_like_info(1_000_000) | {"noise": noise}
    await store.put_info([URL_KEY, ID_KEY], large, TTL_S)
    assert await store.get_info(ID_KEY) == large
    assert await store.get_info(URL_KEY) == large


@pytest.mark.parametrize(
    ("keys", "stored", "ttl_s", "message"),
    [
        (URL_KEY, info(), TTL_S, "not one string"),
        ([], info(), TTL_S, "at least one key"),
        ([URL_KEY, ""], info(), TTL_S, "non-empty"),
        ([URL_KEY], info(), 0.0, "positive"),
        ([URL_KEY], info(), -5.0, "positive"),
        ([URL_KEY], info(), math.inf, "finite"),
        ([URL_KEY], info(), math.nan, "finite"),
        ([URL_KEY], info(tags={"a"}), TTL_S, "not JSON"),
        ([URL_KEY], info(at=object()), TTL_S, "not JSON"),
    ],
)
async def test_bad_arguments_are_refused_and_store_nothing(
    store: InfoCache, keys: Any, stored: dict[str, Any], ttl_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await store.put_info(keys, stored, ttl_s)
    assert await store.get_info(URL_KEY) is None


# --- how each backend stores it -------------------------------------------------------------


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, separators=(",", ":")))


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as raw:
        return raw.execute(sql).fetchall()


async def test_sqlite_stores_one_compressed_copy_and_no_orphan(sqlite_path: Path) -> None:
    store = await open_store(f"sqlite:///{sqlite_path}", FakeClock())
    video = youtube_like_info(300_000)
    try:
        await store.put_info([URL_KEY, ID_KEY, "url:another"], video, TTL_S)
        ((blobs, size),) = _rows(sqlite_path, "SELECT count(*), sum(length(info)) FROM info_blobs")
        assert blobs == 1 and size < _json_size(video) / 5
        await store.put_info([URL_KEY, ID_KEY], info("replaced"), TTL_S)
        await store.put_info(["url:another"], info("replaced too"), TTL_S)  # first blob orphaned
        await store.drop_info(URL_KEY)
        assert _rows(sqlite_path, "SELECT key FROM info_keys") == [("url:another",)]
        assert _rows(sqlite_path, "SELECT count(*) FROM info_blobs") == [(1,)]
    finally:
        await store.close()


async def test_sqlite_puts_delete_expired_rows_a_bounded_number_at_a_time(
    sqlite_path: Path,
) -> None:
    clock = FakeClock()
    store = await open_store(f"sqlite:///{sqlite_path}", clock)
    expired_keys = "SELECT count(*) FROM info_keys WHERE expires_at <= {now!r}"
    try:
        for n in range(150):
            await store.put_info([f"url:{n}", f"id:x:{n}"], info(str(n)), 10.0)
        clock.advance(10)
        await store.put_info(["url:live"], info("live"), 10.0)
        assert _rows(sqlite_path, expired_keys.format(now=clock.now())) == [(300 - 101,)]
        for _ in range(2):
            await store.put_info(["url:live"], info("live"), 10.0)
        assert _rows(sqlite_path, "SELECT key FROM info_keys") == [("url:live",)]
        assert _rows(sqlite_path, "SELECT count(*) FROM info_blobs") == [(1,)]
    finally:
        await store.close()


async def test_redis_stores_one_compressed_copy_with_redis_ttls(redis_server: RedisServer) -> None:
    namespace = f"info-{uuid.uuid4().hex}"
    store = await open_store(f"{redis_server.url}?namespace={namespace}", FakeClock())
    video = youtube_like_info(300_000)
    try:
        await store.put_info([URL_KEY, ID_KEY], video, 600.0)
        await store.put_info(["url:other"], info(), 60.0)
    finally:
        await store.close()
    with redis.Redis(port=redis_server.port) as raw:
        keys = sorted(k.decode() for k in raw.scan_iter(match=f"*{namespace}*"))
        ttls_ms = {key: int(raw.pttl(key)) for key in keys}
        blob_sizes = [int(raw.strlen(k)) for k in keys if ":info:blob:" in k]
    prefix = f"{{hauler:{namespace}}}:info:"
    assert [k for k in keys if ":info:key:" in k] == [
        f"{prefix}key:{ID_KEY}", f"{prefix}key:{URL_KEY}", f"{prefix}key:url:other"
    ]  # fmt: skip
    assert len(blob_sizes) == 2 and all(k.startswith(prefix) for k in keys)
    assert max(blob_sizes) < _json_size(video) / 5
    short, long = sorted(ttls_ms.values())[:2], sorted(ttls_ms.values())[2:]
    assert all(55_000 < ttl <= 60_000 for ttl in short)  # the 60 s put: its blob and key
    assert all(590_000 < ttl <= 600_000 for ttl in long)


async def test_an_unreadable_blob_is_a_miss_and_a_put_replaces_it(
    sqlite_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = f"info-{uuid.uuid4().hex}"
    for url in (f"sqlite:///{sqlite_path}", f"{redis_server.url}?namespace={namespace}"):
        store = await open_store(url, FakeClock())
        try:
            await store.put_info([URL_KEY], info(), TTL_S)
            await store.put_info([ID_KEY], info(), TTL_S)
            if url.startswith("sqlite"):
                with sqlite3.connect(sqlite_path) as raw:
                    raw.execute("UPDATE info_blobs SET info = x'78da00'")  # cut zlib
            else:
                with redis.Redis(port=redis_server.port) as raw:
                    for key in raw.scan_iter(match=f"*{namespace}*:info:blob:*"):
                        raw.set(key, b"not zlib", keepttl=True)
            assert await store.get_info(URL_KEY) is None
            assert "unreadable" in caplog.text and URL_KEY not in caplog.text
            await store.put_info([URL_KEY], info("again"), TTL_S)
            assert await store.get_info(URL_KEY) == info("again")
        finally:
            await store.close()
