"""End to end: what `hauler jobs`, `explain` and `status` print never holds a job's secrets or a
server's terminal escapes, while the store keeps the secrets for the worker; the SQLite store
file is its owner's only."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from hauler.models import JobError
from hauler.store import open_store
from tests.cli.hauler_process import Ran, hauler
from tests.cli.process import HaulerRunner
from tests.transfer.origin import Origin

KIB = 1024

PASSWORD = "hunter2-url-pw"
SECRETS = {
    "Authorization": "Bearer auth-tok-SECRET",
    "Cookie": "sid=cookie-val-SECRET; theme=dark",
    "X-Api-Key": "api-key-SECRET",
    "X-Session-Id": "session-id-SECRET",
}
SECRET_TEXTS = [
    PASSWORD,
    "auth-tok-SECRET",
    "cookie-val-SECRET",
    "api-key-SECRET",
    "session-id-SECRET",
]
ESCAPE = "\x1b]0;pwned\x07\x1b[2J"


def _assert_clean(ran: Ran) -> None:
    """Neither stream holds a secret nor a raw escape character."""
    for text in (ran.out, ran.err):
        for secret in SECRET_TEXTS:
            assert secret not in text, f"{secret!r} leaked in {text!r}"
        assert "\x1b" not in text and "\x07" not in text


async def test_jobs_explain_status_mask_secrets_and_escapes(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    line = {"url": f"http://bob:{PASSWORD}@127.0.0.1:9/a.bin", "headers": SECRETS}
    added = await hauler(store_url, "add", "-", stdin=json.dumps(line) + "\n")
    assert added.code == 0, added.err

    store = await open_store(store_url)
    try:
        (job,) = await store.claim("w", "n", 1, 60.0)
        # An error a server shaped: it quotes the URL with its password and an escape sequence.
        message = f"http://bob:{PASSWORD}@127.0.0.1:9/a.bin answered 500 {ESCAPE} api-key-SECRET"
        await store.fail(job.id, job.token, JobError("transient", message, 0.0), None)
        held = await store.get(job.id)
    finally:
        await store.close()
    assert held is not None and dict(held.spec.headers) == SECRETS
    assert PASSWORD in held.spec.url  # the worker still needs them

    table, as_json, explained, explained_json, status = await asyncio.gather(
        hauler(store_url, "jobs"),
        hauler(store_url, "jobs", "--json"),
        hauler(store_url, "explain", job.id),
        hauler(store_url, "explain", job.id, "--json"),
        hauler(store_url, "status"),
    )  # five readers at once: each is a process start, none changes the store
    for ran in (table, as_json, explained, explained_json, status):
        assert ran.code == 0, ran.err
        _assert_clean(ran)
    assert "http://bob:*" in table.out  # (rich folds the columns to 80)
    assert "]0;pwned\\x07" in table.out  # shown, escaped
    (record,) = as_json.json()
    assert record["url"] == "http://bob:***@127.0.0.1:9/a.bin"
    assert record["spec"]["headers"] == {name: "***" for name in SECRETS}
    assert ESCAPE in record["error"]["message"]  # the JSON escapes it (parsed back here)
    assert "bob:***@" in explained.out and "\\x1b[2J" in explained.out
    assert explained_json.json()["job"]["spec"]["headers"]["X-Api-Key"] == "***"

    db = tmp_path / "state.db"
    for path in (db, db.with_name("state.db-wal"), db.with_name("state.db-shm")):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_existing_store_file_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    ran = await hauler(f"sqlite:///{db}", "status")
    assert ran.code == 0, ran.err
    assert stat.S_IMODE(db.stat().st_mode) == 0o640


async def test_unknown_store_url_is_not_echoed_with_its_password() -> None:
    ran = await hauler("foo://user:store-pw-SECRET@h/", "jobs")
    assert ran.code == 2
    assert "store-pw-SECRET" not in ran.err and "foo://user:***@h/" in ran.err
    redis = await hauler("redis://127.0.0.1:1/0?password=redis-pw-SECRET", "status")
    assert redis.code == 3 and "redis-pw-SECRET" not in redis.err + redis.out


async def test_server_text_reaches_the_terminal_escaped(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("named.bin", KIB, disposition=f'attachment; filename="a{ESCAPE}b.bin"')
    odd = origin.redirect_to("odd", f"ftp://127.0.0.1/{ESCAPE}")
    for args in (["get", "-d", "out"], ["get", "--json", "-d", "json"]):
        ran = await cli.run(*args, origin.url("named.bin"), odd)
        assert ran.returncode == 9, ran.stderr
        assert "\x1b" not in ran.stdout + ran.stderr and "\x07" not in ran.stdout + ran.stderr
        assert "redirect 1 from" in ran.stderr and "\\x1b]0;pwned\\x07" in ran.stderr
    plain = await cli.run("get", "-d", "again", origin.url("named.bin"))
    assert plain.returncode == 0 and "pwned" in plain.stdout  # the name, made safe
