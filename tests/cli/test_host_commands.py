"""``hauler host limit|list|remove`` and the host lines of ``hauler explain``, as subprocesses
against real stores (SQLite and Redis); the rate parsing and the cells they print, as pure
functions. What a command sets is checked in the store (``host_budgets``), what it prints is
checked field by field."""

from __future__ import annotations

import asyncio
import re

import pytest

from hauler.clock import FakeClock
from hauler.hostops import BadLimit, LimitOptions, host_limit
from hauler.hosts import HostBudget, HostLimit
from hauler.hostviews import cooling_lines, left_text, rate_text
from hauler.models import JobError, JobSpec, JobState
from hauler.net import proxy_label
from hauler.store import JobFilter, Store
from hauler.units import parse_request_rate
from tests.cli.hauler_process import Ran, hauler

PROXY_PW = "prx-pw-SECRET"
PROXY_A = proxy_label(f"http://bob:{PROXY_PW}@127.0.0.1:8081")
PROXY_B = proxy_label(f"http://bob:{PROXY_PW}@127.0.0.1:8082")
TEN_MIN_S = 600.0
# A subprocess reads the time a few seconds after the test set it, at worst (a loaded machine).
SLACK_S = 30.0
COOLING = re.compile(r"cooling down for (?:(\d+) min )?(\d+) s")


@pytest.mark.parametrize(
    ("text", "per_s"),
    [
        ("5/s", 5.0),
        ("5", 5.0),
        ("0.5/s", 0.5),
        (".25", 0.25),
        ("30/min", 0.5),
        ("2 / MIN", 2 / 60),
        ("100/h", 100 / 3600),
        ("1/sec", 1.0),
    ],
)
def test_request_rates_read_per_second(text: str, per_s: float) -> None:
    assert parse_request_rate(text) == pytest.approx(per_s)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "must be more than 0"),
        ("0/s", "must be more than 0"),
        ("-1/s", "not a request rate"),
        ("5/d", "not a request rate"),
        ("5/", "not a request rate"),
        ("1e3", "not a request rate"),
        ("fast", "not a request rate"),
        ("", "not a request rate"),
    ],
)
def test_bad_request_rates_are_refused(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_request_rate(text)


def test_limit_options_become_a_host_limit() -> None:
    options = LimitOptions("5/s", "10", "8", "30/min", "2")
    assert host_limit("Example.COM.", options) == HostLimit("example.com", 5.0, 10.0, 8, 0.5, 2)
    only = host_limit("example.com", LimitOptions(proxy_connections="1"))
    assert (only.rate_per_s, only.burst, only.connections, only.proxy_connections) == (
        None,
        1.0,
        None,
        1,
    )


@pytest.mark.parametrize(
    ("host", "options", "message"),
    [
        ("example.com", LimitOptions(), "give at least one limit: --rate, --connections, "),
        ("example.com", LimitOptions(burst="4", connections="2"), "--burst needs --rate"),
        ("http://example.com/", LimitOptions(rate="1"), "not a host name: 'http://example.com/'"),
        ("example.com", LimitOptions(rate="5/d"), "--rate: not a request rate: '5/d'"),
        ("example.com", LimitOptions(proxy_rate="0"), "--proxy-rate: a request rate must be"),
        ("example.com", LimitOptions(connections="0"), "--connections: '0' is not a whole"),
        ("example.com", LimitOptions(proxy_connections="2.5"), "--proxy-connections: '2.5'"),
        ("example.com", LimitOptions(rate="1", burst="0.5"), "--burst: '0.5' is not a number"),
        ("example.com", LimitOptions(rate="1", burst="nan"), "--burst: 'nan' is not a number"),
    ],
)
def test_bad_limits_name_the_option(host: str, options: LimitOptions, message: str) -> None:
    with pytest.raises(BadLimit) as raised:
        host_limit(host, options)
    assert raised.value.message.startswith(message)


@pytest.mark.parametrize(
    ("per_s", "text"),
    [(5.0, "5/s"), (2.5, "2.5/s"), (0.5, "0.5/s"), (1 / 60, "1/min"), (100 / 3600, "100/h")],
)
def test_rates_print_in_the_unit_that_reads(per_s: float, text: str) -> None:
    assert rate_text(per_s) == text


def test_other_rates_print_with_two_decimals_at_most() -> None:
    assert [rate_text(r) for r in (3.3275, 1234567.0, 0.123456, 0.001234)] == [
        "3.33/s",
        "1234567/s",
        "7.41/min",
        "4.44/h",
    ]
    assert rate_text(None) == "-"


def test_times_left_round_up() -> None:
    assert [left_text(s) for s in (0.2, 42, 59.5, 185, 7260)] == [
        "1 s",
        "42 s",
        "1 min 0 s",
        "3 min 5 s",
        "2 h 1 min",
    ]


def test_cooling_lines_count_only_cooldowns_not_over() -> None:
    budget = HostBudget(
        "example.com",
        None,
        None,
        0.0,
        cooldown_until=142.0,
        proxy_cooldowns={PROXY_A: 130.0, PROXY_B: 90.0},
    )
    assert cooling_lines(budget, 100.0) == [
        "example.com is cooling down for 42 s (a 429/503 with Retry-After)",
        f"proxy {PROXY_A} on example.com is cooling down for 30 s (a 429/503 with Retry-After)",
    ]
    assert cooling_lines(budget, 150.0) == []


async def _run(store_url: str, *args: str) -> Ran:
    ran = await hauler(store_url, *args)
    assert PROXY_PW not in ran.out + ran.err
    return ran


def _row(table: str, host: str) -> str:
    rows = [line for line in table.splitlines() if line.split()[:1] == [host]]
    assert len(rows) == 1, table
    return rows[0].strip()


def _cooling_s(text: str) -> float:
    """The seconds a ``cooling down for 9 min 58 s`` line says."""
    match = COOLING.search(text)
    assert match is not None, text
    return int(match.group(1) or 0) * 60 + int(match.group(2))


async def test_limit_list_replace_remove(store_url: str, store: Store, clock: FakeClock) -> None:
    full = await _run(
        store_url,
        *("host", "limit", "Example.COM", "--rate", "5/s", "--burst", "10", "--connections"),
        *("8", "--proxy-rate", "30/min", "--proxy-connections", "2", "--json"),
    )
    assert full.code == 0, full.err
    record = full.json()
    expected = {
        "host": "example.com",
        "has_limit": True,
        "rate_limit_per_s": 5.0,
        "rate_per_s": 5.0,
        "burst": 10.0,
        "connections": 8,
        "connections_in_use": 0,
        "proxy_rate_per_s": 0.5,
        "proxy_connections": 2,
        "cooldown_until": None,
        "cooldown_left_s": 0.0,
        "proxies_cooling": 0,
        "proxy_cooldown_left_s": 0.0,
        "proxy_cooldowns": {},
        "requests": 0,
        "throttled": 0,
    }
    assert {k: record[k] for k in expected} == expected
    [stored] = await store.host_budgets()
    assert stored.limit == HostLimit("example.com", 5.0, 10.0, 8, 0.5, 2)

    other = await _run(store_url, "host", "limit", "cdn.example.org", "--rate", "100/h")
    assert other.out.strip() == "cdn.example.org: 100/h (burst 1)"
    clock.advance(5.0)
    assert await store.set_host_rate("example.com", 2.5, stored.rate_changed_at)
    listed = await _run(store_url, "host", "list", "--json")
    assert [r["host"] for r in listed.json()] == ["cdn.example.org", "example.com"]
    assert listed.json()[1] == {**record, "rate_per_s": 2.5, "rate_changed_at": clock.now()}
    assert listed.json()[0]["rate_limit_per_s"] == pytest.approx(100 / 3600)
    table = (await _run(store_url, "host", "list")).out
    assert _row(table, "example.com").split() == [
        *("example.com", "5/s", "2.5/s", "10", "0/8", "0.5/s,", "2", "connections"),
        *("-", "-", "0", "0"),
    ]

    replaced = await _run(store_url, "host", "limit", "example.com", "--connections", "3")
    assert (replaced.code, replaced.out.strip()) == (0, "example.com: 3 connections")
    budgets = {b.host: b for b in await store.host_budgets()}
    assert budgets["example.com"].limit == HostLimit("example.com", connections=3)
    again = {r["host"]: r for r in (await _run(store_url, "host", "list", "--json")).json()}
    assert (again["example.com"]["rate_limit_per_s"], again["example.com"]["burst"]) == (None, None)
    assert again["example.com"]["connections"] == 3

    removed = await _run(store_url, "host", "remove", "EXAMPLE.com")
    assert (removed.code, removed.out.strip()) == (0, "removed example.com")
    assert [b.host for b in await store.host_budgets()] == ["cdn.example.org"]
    gone = await _run(store_url, "host", "remove", "example.com", "--json")
    assert (gone.code, gone.out) == (1, "")
    assert gone.err.strip() == "hauler: no limit or cooldown for example.com in the store"
    last = await _run(store_url, "host", "remove", "cdn.example.org", "--json")
    assert last.json() == {"removed": "cdn.example.org"}
    assert (await _run(store_url, "host", "list")).out.strip() == (
        "no host has a limit or a cooldown"
    )
    assert (await _run(store_url, "host", "list", "--json")).json() == []


BAD_COMMANDS = [
    (("limit", "example.com"), "give at least one limit: --rate, --connections, --proxy-rate"),
    (("limit", "example.com", "--rate", "5/day"), "--rate: not a request rate: '5/day'"),
    (("limit", "example.com", "--rate", "0/s"), "--rate: a request rate must be more than 0"),
    (("limit", "http://example.com/", "--rate", "1/s"), "not a host name: 'http://example.com/'"),
    (("limit", "example.com:8080", "--rate", "1/s"), "not a host name: 'example.com:8080'"),
    (("limit", "example.com", "--connections", "many"), "--connections: 'many' is not a whole"),
    (("limit", "example.com", "--burst", "3"), "--burst needs --rate"),
    (("remove", "exa mple.com"), "not a host name: 'exa mple.com'"),
]


async def test_bad_inputs_are_one_line_and_exit_2(store_url: str, store: Store) -> None:
    runs = await asyncio.gather(*(_run(store_url, "host", *args) for args, _ in BAD_COMMANDS))
    for ran, (args, message) in zip(runs, BAD_COMMANDS, strict=True):
        assert (ran.code, ran.out) == (2, ""), (args, ran)
        [line] = ran.err.splitlines()
        assert line.startswith(f"hauler: {message}"), (args, line)
    assert await store.host_budgets() == []


async def _throttled(store: Store, clock: FakeClock, url: str) -> str:
    """``url`` queued, claimed and failed with ``throttled``, to be retried in 10 minutes."""
    assert (await store.add([JobSpec(url=url)])).added == 1
    [job] = await store.claim("test-worker", "test-node", 1, 60.0)
    error = JobError("throttled", "429 Too Many Requests", clock.now())
    assert await store.fail(job.id, job.token, error, clock.now() + TEN_MIN_S) is JobState.RETRYING
    return job.id


async def _reasons(store_url: str, job_id: str) -> list[str]:
    ran = await _run(store_url, "explain", job_id, "--json")
    assert ran.code == 0, ran.err
    reasons: list[str] = ran.json()["reasons"]
    return reasons


async def test_cooldowns_show_in_list_and_in_explain(
    store_url: str, store: Store, clock: FakeClock
) -> None:
    limited = await _run(store_url, "host", "limit", "example.com", "--rate", "2/s")
    assert limited.code == 0, limited.err
    cdn_job = await _throttled(store, clock, "http://cdn.example.com/a.bin")
    plain_job = await _throttled(store, clock, "http://plain.example.net/b.bin")
    assert (await store.add([JobSpec(url="http://calm.example.org/c.bin")])).added == 1
    [calm] = await store.list_jobs(JobFilter(host="calm.example.org"))

    until = clock.now() + TEN_MIN_S
    await store.cool_host("example.com", None, until)
    await store.cool_host("example.com", PROXY_A, until + 60)
    await store.cool_host("example.com", PROXY_B, until - 60)
    [budget] = await store.host_budgets()
    assert (budget.cooldown_until, budget.throttled) == (until, 3)

    [record] = (await _run(store_url, "host", "list", "--json")).json()
    assert TEN_MIN_S - SLACK_S < record["cooldown_left_s"] <= TEN_MIN_S
    assert record["cooldown_until"] == until and record["throttled"] == 3
    assert record["proxies_cooling"] == 2 and set(record["proxy_cooldowns"]) == {PROXY_A, PROXY_B}
    assert TEN_MIN_S + 60 - SLACK_S < record["proxy_cooldown_left_s"] <= TEN_MIN_S + 60
    row = _row((await _run(store_url, "host", "list")).out, "example.com")
    assert re.search(r" (9|10) min \d+ s +2 \(longest (10|11) min \d+ s\) +0 +3$", row), row

    cdn = await _reasons(store_url, cdn_job)
    [own] = [r for r in cdn if r.startswith("example.com is cooling down for ")]
    assert own.endswith(" (a 429/503 with Retry-After)")
    assert TEN_MIN_S - SLACK_S < _cooling_s(own) <= TEN_MIN_S
    assert any(r.startswith("2 proxies on example.com are cooling down") for r in cdn), cdn
    assert "example.com's limit for the fleet: 2/s (burst 1)" in cdn
    assert "last error: throttled: 429 Too Many Requests" in cdn

    plain = await _reasons(store_url, plain_job)
    assert plain[-1] == (
        "no limit paces plain.example.net: `hauler host limit plain.example.net --rate 1/s` "
        "sets one"
    )
    assert not any("cooling" in r for r in plain)
    await store.cool_host("plain.example.net", None, clock.now() + 42)
    plain = await _reasons(store_url, plain_job)
    [cooling] = [r for r in plain if "cooling" in r]
    assert 42 - SLACK_S < _cooling_s(cooling) <= 42
    assert cooling.startswith("plain.example.net is cooling down for ")
    hosts = (await _run(store_url, "host", "list", "--json")).json()
    assert [(r["host"], r["has_limit"]) for r in hosts] == [
        ("example.com", True),
        ("plain.example.net", False),
    ]
    assert not any("example" in r for r in (await _reasons(store_url, calm.id))[1:])
