"""What each backend promises beyond the shared contract: durability across a restart,
isolation of namespaces, migrations, and lock waits that end in a clear error."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from hauler.clock import FakeClock, SystemClock
from hauler.errors import StoreUnavailable
from hauler.models import JobSpec, JobState
from hauler.store import Completion, open_store
from hauler.store.codec import spec_to_json
from tests.fixtures.redis_server import RedisServer


def specs(n: int) -> list[JobSpec]:
    return [JobSpec(url=f"http://a.example/{i}") for i in range(n)]


def newest_schema() -> tuple[int]:
    """``PRAGMA user_version`` of a store migrated to the newest schema."""
    from hauler.store.sqlite_db import load_migrations

    return (max(version for version, _ in load_migrations()),)


async def test_redis_keeps_every_acknowledged_write_across_kill_9(
    dedicated_redis: RedisServer,
) -> None:
    clock = FakeClock()
    url = dedicated_redis.url + "?namespace=durable"
    store = await open_store(url, clock)
    try:
        added = await store.add(specs(20))
        jobs = await store.claim("w1", "n1", 8, 30)
        await store.complete([Completion(j.id, j.token, {"n": j.id}) for j in jobs[:5]])
        dedicated_redis.restart()  # kill -9, then start on the same port and AOF dir
        counts = await store.counts()
        assert (counts[JobState.DONE], counts[JobState.RUNNING]) == (5, 3)
        assert counts[JobState.QUEUED] == 12
        done = await store.get(jobs[0].id)
        assert done is not None and done.result == {"n": jobs[0].id}
        assert (await store.add(specs(20))).skipped == 20
        assert {j.id for j in await store.list_jobs()} == set(added.ids)
    finally:
        await store.close()


async def test_redis_namespaces_do_not_see_each_other(redis_server: RedisServer) -> None:
    clock, tag = FakeClock(), uuid.uuid4().hex  # the server is shared: namespaces of its own
    one = await open_store(f"{redis_server.url}?namespace=iso-one-{tag}", clock)
    two = await open_store(f"{redis_server.url}?namespace=iso-two-{tag}", clock)
    try:
        await one.add(specs(3))
        assert (await two.add(specs(3))).added == 3
        assert len(await one.claim("w", "n", 10, 30)) == 3
        assert (await two.counts())[JobState.QUEUED] == 3
    finally:
        await one.close()
        await two.close()


async def test_sqlite_is_shared_by_stores_on_one_file_and_migrates_once(tmp_path: Path) -> None:
    clock = FakeClock()
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = await open_store(url, clock), await open_store(url, clock)
    try:
        await first.add(specs(4))
        (job,) = await second.claim("w2", "n2", 1, 30)
        assert (await first.counts())[JobState.RUNNING] == 1
        assert await first.complete([Completion(job.id, job.token)]) == []
    finally:
        await first.close()
        await second.close()
    with sqlite3.connect(tmp_path / "shared.db") as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == newest_schema()
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_lock_held_too_long_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = await open_store(f"sqlite:///{path}?busy_timeout_s=0.05", FakeClock())
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked") as caught:
            await store.add(specs(1))
        assert str(path) in str(caught.value)
        raw.execute("ROLLBACK")
        assert (await store.add(specs(1))).added == 1
    finally:
        raw.close()
        await store.close()


async def test_redis_namespace_must_not_break_the_hash_tag(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match="namespace"):
        await open_store(redis_server.url + "?namespace=a}b", FakeClock())


async def test_redis_keys_of_a_namespace_share_one_hash_tag(redis_server: RedisServer) -> None:
    import redis

    namespace = f"tagged-{uuid.uuid4().hex}"
    store = await open_store(f"{redis_server.url}?namespace={namespace}", FakeClock())
    try:
        assert await store.claim("w", "n", 1, 30) == []
        await store.add(specs(2))
        await store.claim("w", "n", 1, 30)
        await store.set_paused(True, "w")
        await store.request_stop()
        await store.put_info(["url:x", "id:y:z"], {"id": "z"}, 60)
    finally:
        await store.close()
    with redis.Redis(port=redis_server.port) as raw:
        keys = [k.decode() for k in raw.scan_iter(match=f"*{namespace}*")]
    assert keys and all(k.startswith(f"{{hauler:{namespace}}}:") for k in keys)


def _drain_in_process(url: str, name: str, out: Any) -> None:
    """A worker process: claim and complete until the queue is empty; report what it did."""

    async def drain() -> tuple[list[str], int]:
        store = await open_store(url, SystemClock())
        done: list[str] = []
        lost = 0
        for _round in range(1000):  # bounded: 300 jobs need far fewer rounds
            jobs = await store.claim(name, "node-1", 8, 600)
            if not jobs:
                break
            lost += len(await store.complete([Completion(j.id, j.token) for j in jobs]))
            done += [j.id for j in jobs]
        await store.close()
        return done, lost

    out.put(asyncio.run(drain()))


async def test_sqlite_worker_processes_share_one_file_without_double_claims(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/fleet.db"
    store = await open_store(url, FakeClock())
    added = await store.add(specs(300))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_drain_in_process, args=(url, f"w{i}", out)) for i in range(3)]
    for proc in procs:
        proc.start()
    try:
        reports = [await asyncio.to_thread(out.get, timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
    done = [job_id for ids, _ in reports for job_id in ids]
    assert sorted(done, key=int) == added.ids and sum(lost for _, lost in reports) == 0
    assert (await store.counts())[JobState.DONE] == 300
    await store.close()


async def test_sqlite_file_of_schema_1_is_migrated_with_its_jobs(tmp_path: Path) -> None:
    from hauler.store.sqlite_db import load_migrations, migrate

    path = tmp_path / "old.db"
    spec = JobSpec(url="http://a.example/old")
    with sqlite3.connect(path, isolation_level=None) as raw:
        migrate(raw, [block for block in load_migrations() if block[0] == 1])
        raw.execute(
            "INSERT INTO jobs (key, spec, state, priority, max_attempts, ready_at, host, "
            "collection, created_at, updated_at) VALUES (?, ?, 'queued', 0, 5, 0, 'a.example', "
            "'', 0, 0)",
            (spec.dedupe_key, spec.model_dump_json()),
        )
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
    store = await open_store(f"sqlite:///{path}", FakeClock())
    try:
        (job,) = await store.claim("w1", "n1", 2, 30)
        assert job.spec == spec and (await store.counts())[JobState.RUNNING] == 1
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == newest_schema()
        assert raw.execute("SELECT lost FROM jobs").fetchall() == [(0,)]


async def test_sqlite_file_of_schema_2_gets_the_info_cache_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    from hauler.store.sqlite_db import load_migrations, migrate

    path = tmp_path / "v2.db"
    with sqlite3.connect(path, isolation_level=None) as raw:  # a store as version 2 left it
        migrate(raw, [block for block in load_migrations() if block[0] <= 2])
        raw.execute(
            "INSERT INTO jobs (key, spec, state, priority, max_attempts, ready_at, host, "
            "collection, created_at, updated_at) VALUES (?, ?, 'queued', 0, 5, 0, 'a.example', "
            "'', 0, 0)",
            ("k", '{"url":"http://a.example/v2"}'),
        )
        assert raw.execute("PRAGMA user_version").fetchone() == (2,)
    store = await open_store(f"sqlite:///{path}", FakeClock())
    try:
        (job,) = await store.claim("w1", "n1", 1, 30)
        assert job.spec.url == "http://a.example/v2"
        await store.put_info(["id:x:1"], {"title": "after the upgrade"}, 60)
        assert await store.get_info("id:x:1") == {"title": "after the upgrade"}
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == newest_schema()


def test_specs_are_stored_without_their_defaults_and_whole_ones_still_read() -> None:
    plain = JobSpec(url="http://a.example/x")
    assert spec_to_json(plain) == '{"url":"http://a.example/x"}'
    rich = JobSpec(
        url="http://a.example/y",
        output="y.bin",
        checksum="sha256=" + "ab" * 32,
        headers={"Cookie": "c=1"},
        priority=3,
        tags=("t",),
        max_attempts=9,
    )
    for spec in (plain, rich):
        assert JobSpec.model_validate_json(spec_to_json(spec)) == spec
        # As earlier versions stored them: every field spelled out.
        assert JobSpec.model_validate_json(spec.model_dump_json()) == spec


async def test_sqlite_row_holds_the_compact_spec(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}", FakeClock())
    try:
        await store.add(specs(1))
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        (stored,) = conn.execute("SELECT spec FROM jobs").fetchone()
    assert stored == '{"url":"http://a.example/0"}'


async def test_redis_job_of_a_short_url_fits_the_compact_hash_encoding(
    redis_server: RedisServer,
) -> None:
    import redis

    namespace = f"compact-{uuid.uuid4().hex}"
    store = await open_store(f"{redis_server.url}?namespace={namespace}", FakeClock())
    try:
        (job_id,) = (await store.add(specs(1))).ids
    finally:
        await store.close()
    with redis.Redis(port=redis_server.port) as raw:
        key = f"{{hauler:{namespace}}}:job:{job_id}"
        encoding = raw.object("ENCODING", key)
        # A whole spec (~180 bytes) is over hash-max-listpack-value (64): the hash would be a
        # real hash table, ~1 KB a job instead of ~0.5 KB.
        assert encoding in (b"listpack", b"ziplist"), encoding
