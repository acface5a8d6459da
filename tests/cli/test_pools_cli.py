"""End to end: ``hauler proxy …``, ``hauler account …`` and ``hauler pools`` as subprocesses
against real stores (SQLite and Redis). A ban, unban or reset lands in the store (the fleet's
view, ``pools_version`` moves); no proxy password, cookie value or token is ever printed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from hauler.policy.ban import count_use
from hauler.resources import Resource, ResourceKind, ResourceState, Use
from hauler.store import Store
from tests.cli.hauler_process import Ran, hauler

PROXY_PW = "prx-pw-SECRET"
COOKIE_VALUE = "cookie-val-SECRET"
TOKEN = "tok-SECRET-123"
AUTH = "auth-hdr-SECRET"
SECRETS = (PROXY_PW, COOKIE_VALUE, TOKEN, AUTH)
PROXY_A = f"http://bob:{PROXY_PW}@127.0.0.1:8081"
PROXY_B = f"socks5h://carol:{PROXY_PW}@127.0.0.1:1081"
COOKIES = (
    "# Netscape HTTP Cookie File\n"
    f".example.com\tTRUE\t/\tTRUE\t0\tsid\t{COOKIE_VALUE}\n"
    "#HttpOnly_example.com\tFALSE\t/\tFALSE\t0\ttheme\tdark\n"
)
HALF_HOUR_S = 1800


class Runs:
    """Runs ``hauler`` on one store and keeps every output, to check none leaks a secret."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.ran: list[Ran] = []

    async def __call__(self, *args: str) -> Ran:
        ran = await hauler(self.store_url, *args)
        self.ran.append(ran)
        return ran

    def assert_no_secret(self) -> None:
        """No stdout or stderr of any run holds a secret."""
        assert self.ran
        for ran in self.ran:
            for text in (ran.out, ran.err):
                for secret in SECRETS:
                    assert secret not in text, f"{secret!r} leaked in {text!r}"


def _row(table: str, resource_id: str) -> str:
    """The line of a text listing that starts with ``resource_id``."""
    rows = [line for line in table.splitlines() if line.split()[:1] == [resource_id]]
    assert len(rows) == 1, table
    return rows[0]


async def _use_once(store: Store, resource_id: str, error_class: str) -> None:
    """Lend ``resource_id`` and give it back failed with ``error_class`` (counted, not judged)."""

    def choose(resources: Sequence[Resource], now: float) -> Resource | None:
        return next((r for r in resources if r.id == resource_id), None)

    def decide(resource: Resource, uses: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
        # The store counted the lend as a use already (as hauler.pools.lender does).
        lent = dataclasses.replace(resource.counters, uses=resource.counters.uses - 1)
        return dataclasses.replace(resource, counters=count_use(lent, uses[-1])), uses

    lent = await store.lend(ResourceKind.PROXY, choose)
    assert lent is not None and lent.id == resource_id
    use = Use(resource_id, at=lent.updated_at, error_class=error_class, latency_s=0.25)
    assert await store.give_back(resource_id, use, decide) is not None


async def test_proxy_add_list_ban_unban_reset_remove(store_url: str, store: Store) -> None:
    run = Runs(store_url)
    added = await run(
        "proxy", "add", PROXY_A, PROXY_B, "--weight", "2", "--region", "eu", "--site", "Example.com"
    )
    assert added.code == 0, added.err
    assert "http://bob:***@127.0.0.1:8081" in added.out
    again = await run("proxy", "add", PROXY_A, "--json")  # same URL: the same proxy, updated
    assert [r["id"] for r in again.json()["added"]] == ["p1"]
    assert again.json()["added"][0]["weight"] == 1.0

    bad = await run("proxy", "add", f"http://bob:{PROXY_PW}@127.0.0.1", "socks5://127.0.0.1:9")
    assert bad.code == 2 and bad.out == ""
    assert bad.err.strip() == (
        "hauler: bad proxy URL http://bob:***@127.0.0.1: a proxy needs a host and a port"
    )
    bad_scheme = await run("proxy", "add", f"ftp://bob:{PROXY_PW}@127.0.0.1:21")
    assert bad_scheme.code == 2 and "ftp://bob:***@127.0.0.1:21" in bad_scheme.err
    no_scheme = await run("proxy", "add", f"bob:{PROXY_PW}@127.0.0.1:1")
    assert no_scheme.code == 2 and "***@127.0.0.1:1" in no_scheme.err
    assert len(await store.list_resources(ResourceKind.PROXY)) == 2  # nothing of a bad add

    listed = await run("proxy", "list", "--json")
    records = {r["id"]: r for r in listed.json()}
    assert set(records) == {"p1", "p2"}
    assert records["p1"]["url"] == "http://bob:***@127.0.0.1:8081"
    assert records["p2"]["url"] == "socks5h://carol:***@127.0.0.1:1081"
    assert (records["p2"]["weight"], records["p2"]["region"]) == (2.0, "eu")
    assert records["p2"]["sites"] == ["example.com"]
    assert records["p1"]["state"] == "active" and records["p1"]["seconds_left"] is None

    await _use_once(store, "p1", "bot_check")
    await _use_once(store, "p1", "proxy")
    table = await run("proxy", "list")
    row = _row(table.out, "p1")
    assert "active" in row and "bot_check 1, proxy 1" in row and "250 ms" in row
    assert "http://bob:***@127.0.0.1:8081" in row

    used = await store.get_resource("p1")
    assert used is not None and (used.counters.uses, used.counters.in_use) == (2, 0)
    version = await store.pools_version()
    banned = await run("proxy", "ban", "p1", "--for", "30m", "--json")
    assert banned.code == 0, banned.err
    assert banned.json()["state"] == "banned"
    assert HALF_HOUR_S - 120 < banned.json()["seconds_left"] <= HALF_HOUR_S
    assert await store.pools_version() != version  # waiting jobs of the fleet look again
    held = await store.get_resource("p1")
    assert held is not None and held.state is ResourceState.BANNED
    assert held.until is not None and held.counters == used.counters  # counters kept
    shown = await run("proxy", "list")
    row = _row(shown.out, "p1")
    assert "banned" in row and ("29m" in row or "30m" in row), row
    by_default = await run("proxy", "ban", "p2")
    assert by_default.code == 0 and "banned p2: banned for 59m" in by_default.out

    version = await store.pools_version()
    unbanned = await run("proxy", "unban", "p1", "--json")
    assert (unbanned.json()["state"], unbanned.json()["until"]) == ("active", None)
    assert await store.pools_version() != version
    held = await store.get_resource("p1")
    assert held is not None and held.state is ResourceState.ACTIVE
    assert held.counters == used.counters

    reset = await run("proxy", "reset", "p1", "--json")
    assert (reset.json()["uses"], reset.json()["failures"], reset.json()["state"]) == (
        0,
        {},
        "active",
    )
    assert await store.resource_uses("p1") == []

    removed = await run("proxy", "remove", "p2")
    assert (removed.code, removed.out.strip()) == (0, "removed p2")
    assert [r.id for r in await store.list_resources()] == ["p1"]
    gone = await run("proxy", "remove", "p2")
    assert (gone.code, gone.err.strip()) == (1, "hauler: no proxy p2")
    bad_for = await run("proxy", "ban", "p1", "--for", "soon")
    assert bad_for.code == 2 and "not a duration" in bad_for.err
    run.assert_no_secret()


async def test_proxy_import_reports_bad_lines_and_adds_the_rest(
    store_url: str, store: Store, tmp_path: Path
) -> None:
    listing = tmp_path / "proxies.txt"
    lines = [
        PROXY_A,
        f"http://bob:{PROXY_PW}@127.0.0.1:notaport",
        "",
        "# a comment",
        json.dumps({"url": PROXY_B, "weight": 3, "region": "us", "sites": ["a.example"]}),
        '{"url": 7}',
        "https://127.0.0.1:8443/",
        json.dumps({"url": "http://127.0.0.1:8082", "weight": -1}),
    ]
    listing.write_text("\n".join(lines) + "\n")
    run = Runs(store_url)
    imported = await run("proxy", "import", str(listing), "--json")
    assert imported.code == 1  # bad lines make the exit code say so; the rest are added
    body = imported.json()
    assert [r["url"] for r in body["added"]] == [
        "http://bob:***@127.0.0.1:8081",
        "socks5h://carol:***@127.0.0.1:1081",
        "https://127.0.0.1:8443",
    ]
    assert [b["line_no"] for b in body["bad_lines"]] == [2, 6, 8]
    assert "bob:***@127.0.0.1:notaport" in body["bad_lines"][0]["reason"]
    assert [line.split(":")[0] for line in imported.err.splitlines()] == [
        "line 2",
        "line 6",
        "line 8",
    ]
    stored = await store.list_resources(ResourceKind.PROXY)
    assert [r.spec.name for r in stored] == [PROXY_A, PROXY_B, "https://127.0.0.1:8443"]
    assert (stored[1].spec.weight, stored[1].spec.region, stored[1].spec.sites) == (
        3.0,
        "us",
        ("a.example",),
    )
    text = await run("proxy", "import", str(listing))
    assert text.code == 1 and text.out.strip() == "added 3, 3 bad lines"
    assert len(await store.list_resources()) == 3  # imported again: the same three
    missing = await run("proxy", "import", str(tmp_path / "none.txt"))
    assert missing.code == 2 and "cannot read" in missing.err
    run.assert_no_secret()


async def test_accounts_from_cookies_headers_token_and_import(
    store_url: str, store: Store, tmp_path: Path
) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES)
    run = Runs(store_url)
    alice = await run("account", "add", "alice", "--cookies", str(cookies), "--site", "example.com")
    assert (alice.code, alice.out.strip()) == (0, "added a1 alice")
    bob = await run(
        "account",
        "add",
        "bob",
        "--token",
        TOKEN,
        "--header",
        f"Authorization: Bearer {AUTH}",
        "--header",
        "X-Lang: en",
        "--json",
    )
    assert bob.code == 0, bob.err
    record = bob.json()["added"][0]
    assert (record["id"], record["has_token"], record["cookies"]) == ("a2", True, 0)
    assert record["headers"] == {"Authorization": "***", "X-Lang": "en"}
    held = await store.get_resource("a1")
    assert held is not None and held.spec.cookies == COOKIES  # the worker needs them
    assert held.spec.sites == ("example.com",)

    broken = tmp_path / "broken.txt"
    broken.write_text(f"example.com\tTRUE\t/\t{COOKIE_VALUE}\n")
    for args in (
        ("--cookies", str(broken)),
        ("--cookies", str(tmp_path / "missing.txt")),
        ("--header", "no colon here"),
        (),
    ):
        refused = await run("account", "add", "carol", *args)
        assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1, refused.err
    assert "broken.txt line 1" in run.ran[-4].err and "missing.txt" in run.ran[-3].err
    assert len(await store.list_resources(ResourceKind.ACCOUNT)) == 2

    listed = await run("account", "list")
    assert "cookies: 2 (***)" in _row(listed.out, "a1")
    assert "token ***, Authorization: ***, X-Lang: en" in _row(listed.out, "a2")

    imports = tmp_path / "accounts.jsonl"
    imports.write_text(
        "\n".join(
            [
                json.dumps({"name": "dave", "cookies": "cookies.txt", "sites": ["b.example"]}),
                json.dumps({"name": "erin", "cookies": COOKIES}),
                "{not json",
                json.dumps({"name": "frank", "cookies": "nowhere.txt"}),
                json.dumps({"name": "gina", "headers": {"X-Api-Key": AUTH}, "token": TOKEN}),
            ]
        )
        + "\n"
    )
    imported = await run("account", "import", str(imports), "--json")
    assert imported.code == 1
    body = imported.json()
    assert [(r["id"], r["name"], r["cookies"]) for r in body["added"]] == [
        ("a3", "dave", 2),
        ("a4", "erin", 2),
        ("a5", "gina", 0),
    ]
    assert [b["line_no"] for b in body["bad_lines"]] == [3, 4]
    assert "nowhere.txt" in body["bad_lines"][1]["reason"]
    assert body["added"][2]["headers"] == {"X-Api-Key": "***"}

    banned = await run("account", "ban", "a1", "--for", "2h", "--json")
    assert banned.json()["state"] == "banned" and banned.json()["seconds_left"] > 7000
    both = await run("pools", "--json")
    assert [p["id"] for p in both.json()["proxies"]] == []
    states = {a["name"]: a["state"] for a in both.json()["accounts"]}
    assert states == dict.fromkeys(["bob", "dave", "erin", "gina"], "active") | {"alice": "banned"}
    text = await run("pools")
    assert "no proxy in the pool" in text.out and "banned" in _row(text.out, "a1")
    not_proxy = await run("proxy", "unban", "a1")
    assert (not_proxy.code, not_proxy.err.strip()) == (1, "hauler: no proxy a1")
    assert (await run("account", "unban", "a1")).code == 0
    assert (await run("account", "reset", "a1")).code == 0
    assert (await run("account", "remove", "a1")).code == 0
    assert [r.spec.name for r in await store.list_resources()] == ["bob", "dave", "erin", "gina"]
    run.assert_no_secret()
