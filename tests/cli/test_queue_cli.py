"""End to end: the queue operations CLI as a subprocess, on SQLite and on Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hauler.models import JobError, JobState
from hauler.store import Store
from tests.cli.hauler_process import hauler
from tests.fixtures.redis_server import free_port

LIST = "\n".join(
    [
        "http://127.0.0.1:9/a.bin",
        "not a url",
        '{"url": "http://127.0.0.1:9/b.bin", "priority": 5, "output": "b/b.bin"}',
        "",
        "# comment",
        '{"url": 7}',
        "http://other.invalid:9/c.bin",
        "http://127.0.0.1:9/a.bin",
    ]
)


async def test_add_reports_counts_bad_lines_and_dedupes(store_url: str, tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(LIST + "\n")
    first = await hauler(store_url, "add", "-i", str(listing), "--json", "--priority", "1")
    assert first.code == 1  # bad lines make the exit code say so; good lines are still added
    body = first.json()
    assert (body["added"], body["skipped"], body["bad"]) == (3, 1, 2)
    assert [(b["line_no"], b["text"]) for b in body["bad_lines"]] == [
        (2, "not a url"),
        (6, '{"url": 7}'),
    ]
    again = await hauler(store_url, "add", "-i", str(listing), "--json")
    assert (again.json()["added"], again.json()["skipped"]) == (0, 4)
    text = await hauler(store_url, "add", "-", stdin="http://127.0.0.1:9/d.bin\nbad line\n")
    assert "added 1, skipped 0 duplicates, 1 bad lines" in text.out
    assert "line 2: not a URL" in text.err
    args = await hauler(store_url, "add", "http://127.0.0.1:9/e.bin", "--collection", "x", "--json")
    assert (args.code, args.json()["added"]) == (0, 1)

    status_ran, jobs_ran, table = await asyncio.gather(  # readers, at once
        hauler(store_url, "status", "--json"),
        hauler(store_url, "jobs", "--state", "queued", "--json"),
        hauler(store_url, "jobs", "--limit", "2"),
    )
    status = status_ran.json()
    assert status["jobs"] == {"queued": 5, "running": 0, "retrying": 0, "done": 0, "failed": 0}
    assert status["workers"] == [] and status["paused"] == {"fleet": False, "workers": []}
    jobs = jobs_ran.json()
    by_url = {job["url"]: job for job in jobs}
    assert by_url["http://127.0.0.1:9/a.bin"]["priority"] == 1
    assert by_url["http://127.0.0.1:9/b.bin"]["priority"] == 5
    assert by_url["http://127.0.0.1:9/b.bin"]["spec"]["output"] == "b/b.bin"
    assert table.code == 0 and "queued" in table.out and len(table.out.splitlines()) == 3


async def _fail_all(store: Store) -> dict[str, str]:
    """Claim every job and fail it for good: 404 for 127.0.0.1, 403 elsewhere. id → url."""
    jobs = await store.claim("test-worker", "test-node", 100, 60.0)
    for job in jobs:
        reason = "not_found" if job.spec.host == "127.0.0.1" else "forbidden"
        await store.fail(job.id, job.token, JobError(reason, f"{reason} here", 0.0), None)
    return {job.id: job.spec.url for job in jobs}


async def test_requeue_explain_clear(store_url: str, store: Store) -> None:
    urls = "http://127.0.0.1:9/1\nhttp://127.0.0.1:9/2\nhttp://other.invalid/3\n"
    assert (await hauler(store_url, "add", "-", stdin=urls)).code == 0
    ids = await _fail_all(store)
    assert len(ids) == 3
    some_id = next(i for i, url in ids.items() if "other.invalid" in url)
    as_json, human, missing = await asyncio.gather(  # readers, at once
        hauler(store_url, "explain", some_id, "--json"),
        hauler(store_url, "explain", some_id),
        hauler(store_url, "explain", "999999"),
    )
    explained = as_json.json()
    assert explained["job"]["state"] == "failed"
    assert any("failed with forbidden: forbidden here" in r for r in explained["reasons"])
    assert "hauler requeue" in human.out
    assert missing.code == 1

    by_reason = await hauler(store_url, "requeue", "--reason", "not_found", "--json")
    assert by_reason.json() == {"requeued": 2}
    by_host = await hauler(
        store_url, "requeue", "--host", "OTHER.invalid", "--since", "1h", "--json"
    )
    assert by_host.json() == {"requeued": 1}
    counts = await store.counts()
    assert (counts[JobState.QUEUED], counts[JobState.FAILED]) == (3, 0)
    requeued = await store.get(some_id)
    assert requeued is not None and requeued.attempts == 0

    refused = await hauler(store_url, "clear")
    assert refused.code == 2 and "--yes" in refused.err
    assert (await hauler(store_url, "clear", "--state", "failed", "--json")).json() == {
        "cleared": 0
    }
    assert (await hauler(store_url, "clear", "--yes", "--json")).json() == {"cleared": 3}
    assert (await hauler(store_url, "add", "-", "--json", stdin=urls)).json()["added"] == 3


async def test_pause_resume_stop_flags(store_url: str, store: Store) -> None:
    assert (await hauler(store_url, "pause", "--json")).json() == {"paused": True, "worker": None}
    assert await store.is_paused("anyone")
    status = (await hauler(store_url, "status", "--json")).json()
    assert status["paused"]["fleet"] is True
    assert "paused: the whole fleet" in (await hauler(store_url, "status")).out
    await hauler(store_url, "resume")
    await hauler(store_url, "pause", "--worker", "w7")
    assert await store.is_paused("w7") and not await store.is_paused("w8")
    assert (await hauler(store_url, "status", "--json")).json()["paused"] == {
        "fleet": False,
        "workers": ["w7"],
    }
    await hauler(store_url, "resume", "--worker", "w7", "--json")
    assert not await store.is_paused("w7")
    stop = (await hauler(store_url, "stop", "--json")).json()
    assert stop["stop_requested_at"] == await store.stop_requested_at()


async def test_dead_store_is_one_line_and_exit_3() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    commands = (["status"], ["add", "http://127.0.0.1:9/x"], ["jobs", "--json"])
    # At once: each spends most of a second on the client's reconnect backoff.
    for ran in await asyncio.gather(*(hauler(dead, *args) for args in commands)):
        assert ran.code == 3, ran.err
        assert "Traceback" not in ran.err
        lines = ran.err.strip().splitlines()
        assert len(lines) == 1 and "127.0.0.1" in lines[0] and "--store" in lines[0]


async def test_add_streams_many_batches_and_dedupes_across_them(store_url: str) -> None:
    """2,500 lines (three batches), every URL twice, the second copy in a later batch."""
    urls = [f"http://127.0.0.1:9/many/{i}.bin" for i in range(1250)]
    ran = await hauler(store_url, "add", "-", "--json", stdin="\n".join(urls + urls) + "\n")
    assert ran.code == 0
    assert ran.json() == {"added": 1250, "skipped": 1250, "bad": 0, "bad_lines": []}


async def test_add_reports_every_bad_url_with_its_line_and_adds_the_rest(
    store_url: str, tmp_path: Path
) -> None:
    """A port out of range, an unclosed IPv6 bracket and bytes that are not UTF-8 are bad lines
    with their numbers; the good lines before and after them are all added."""
    listing = tmp_path / "urls.txt"
    listing.write_bytes(
        b"http://127.0.0.1:9/1\n"
        b"http://127.0.0.1:9/2\n"
        b"http://h:99999/x\n"
        b"http://[::1/x\n"
        b"http://127.0.0.1:9/caf\xe9\n"
        b'{"url": "http://h:70000/j"}\n'
        b"http://127.0.0.1:9/3\n"
        b"http://[::1]:9/4\n"
    )
    ran = await hauler(store_url, "add", "-i", str(listing))
    assert ran.code == 1
    assert "added 4, skipped 0 duplicates, 4 bad lines" in ran.out
    errors = ran.err.splitlines()
    assert errors == [
        "line 3: the port is not a number from 0 to 65535: http://h:99999/x",
        "line 4: unbalanced [ ] around the host (an IPv6 address is written [::1]): http://[::1/x",
        "line 5: not valid UTF-8: http://127.0.0.1:9/caf\\xe9",
        'line 6: url: the port is not a number from 0 to 65535: {"url": "http://h:70000/j"}',
    ]
    jobs = (await hauler(store_url, "jobs", "--json")).json()
    assert sorted(job["url"] for job in jobs) == [
        "http://127.0.0.1:9/1",
        "http://127.0.0.1:9/2",
        "http://127.0.0.1:9/3",
        "http://[::1]:9/4",
    ]


async def test_same_url_under_two_output_names_is_two_jobs(store_url: str) -> None:
    lines = (
        '{"url": "http://127.0.0.1:9/a", "output": "one.bin"}\n'
        '{"url": "http://127.0.0.1:9/a", "output": "two.bin"}\n'
        '{"url": "http://127.0.0.1:9/a", "output": "two.bin"}\n'
        "http://127.0.0.1:9/a\n"
        "http://127.0.0.1:9/a\n"
    )
    ran = await hauler(store_url, "add", "-", "--json", stdin=lines)
    assert (ran.code, ran.json()["added"], ran.json()["skipped"]) == (0, 3, 2)
