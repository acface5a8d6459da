"""The loopback proxies and the hostile origin, proven against each other and the real `hauler`.

Each download runs the real command (``hauler get --json --proxy URL``) and checks the file's
sha256 against the origin's, what the proxy counted, and who the origin says served it. The
faulty proxies pin what hauler reports today for each proxy failure (class and message): that is
the evidence for the pools' ``is_proxy_fault`` (see the brief's report).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from hauler.clock import FakeClock
from hauler.errors import BotCheck
from hauler.media.errors import classify_message
from tests.cli.process import HaulerRunner
from tests.cli.test_get import sha256_of
from tests.fixtures.hostile import (
    BOT_WALL_HTML,
    DIRECT,
    HostileOrigin,
    hostile_origin,
    max_rate_per_s,
)
from tests.fixtures.proxies import (
    HttpProxy,
    ProxyFarm,
    ProxyMode,
    parse_head,
    proxy_farm,
)
from tests.transfer.origin import content
from tests.transfer.test_tls import serving_tls

__all__ = ["hostile_origin", "proxy_farm"]  # fixtures, imported to be found

KIB = 1024
CREDENTIALS = ("alice", "pr0xy-pw")


@pytest.fixture
def cli(tmp_path: Path) -> HaulerRunner:
    """The real `hauler` command in ``tmp_path``."""
    return HaulerRunner(cwd=tmp_path)


def know(origin: HostileOrigin, farm: ProxyFarm) -> None:
    """Let the origin name the farm's proxies by their tunnels' ports."""
    origin.know_proxies((proxy.name, proxy.stats) for proxy in farm.proxies)


async def get_json(
    cli: HaulerRunner, proxy: str | None, url: str, *extra: str, out: str = "out"
) -> dict[str, Any]:
    """``hauler get --json -d OUT`` of one URL (no retries) and its one file record, with the
    exit status under ``"returncode"``."""
    via = ("--proxy", proxy) if proxy else ()
    done = await cli.run("get", "--json", "--retries", "0", "-d", out, *via, *extra, url)
    record: dict[str, Any] = json.loads(done.stdout)["files"][0]
    record["returncode"] = done.returncode
    return record


# --- healthy proxies carry hauler's downloads -------------------------------------------------


async def test_http_proxy_with_basic_auth_forwards_the_download(
    hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, cli: HaulerRunner
) -> None:
    proxy = await proxy_farm.http(credentials=CREDENTIALS)
    url = hostile_origin.add("via-http.bin", 300 * KIB)
    record = await get_json(cli, proxy.url, url)
    assert record["error"] is None and record["returncode"] == 0
    assert sha256_of(cli.cwd / "out" / "via-http.bin") == hostile_origin.sha256("via-http.bin")
    assert proxy.stats.credentials == {proxy.expected_authorization}
    assert proxy.stats.requests >= 1 and proxy.stats.tunnels == 0
    assert proxy.stats.bytes_down >= 300 * KIB
    assert {entry.proxy for entry in hostile_origin.log} == {"proxy-1"}  # from its Via header
    assert "pr0xy-pw" not in json.dumps(record)


async def test_http_proxy_without_the_credentials_answers_407_and_forwards_nothing(
    hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, cli: HaulerRunner
) -> None:
    proxy = await proxy_farm.http(credentials=CREDENTIALS)
    url = hostile_origin.add("no-auth.bin", 10 * KIB)
    for credentials in (None, ("alice", "wrong")):
        record = await get_json(cli, proxy.url_as(credentials), url)
        assert "407" in record["error"]["message"]
    assert proxy.stats.requests == 0 and proxy.stats.refusals >= 2
    assert len(proxy.stats.credentials) == 1  # the wrong password's header; none without
    assert hostile_origin.log == []


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_socks5_proxy_with_a_password_tunnels_the_download(
    hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, cli: HaulerRunner, scheme: str
) -> None:
    proxy = await proxy_farm.socks5(credentials=CREDENTIALS)
    know(hostile_origin, proxy_farm)
    hostile_origin.add("via-socks.bin", 300 * KIB)
    # socks5h hands the name to the proxy; socks5 resolves it here first (curl's meaning).
    url = hostile_origin.url("via-socks.bin", "localhost" if scheme == "socks5h" else "127.0.0.1")
    record = await get_json(cli, proxy.url.replace("socks5://", f"{scheme}://"), url)
    assert record["error"] is None and record["returncode"] == 0
    assert sha256_of(cli.cwd / "out" / "via-socks.bin") == hostile_origin.sha256("via-socks.bin")
    assert proxy.stats.credentials == {"alice"}
    assert proxy.stats.tunnels >= 1 and proxy.stats.requests == 0
    assert {target.split(":")[0] for target in proxy.stats.targets} == {
        "localhost" if scheme == "socks5h" else "127.0.0.1"
    }
    assert {entry.proxy for entry in hostile_origin.log} == {"proxy-1"}  # by its tunnel's port


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_a_slow_proxy_still_carries_the_download(
    hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, cli: HaulerRunner, kind: str
) -> None:
    start = proxy_farm.http if kind == "http" else proxy_farm.socks5
    proxy = await start(mode=ProxyMode.SLOW, delay_s=0.3)
    url = hostile_origin.add("slow.bin", 200 * KIB)
    record = await get_json(cli, proxy.url, url)
    assert record["error"] is None
    assert sha256_of(cli.cwd / "out" / "slow.bin") == hostile_origin.sha256("slow.bin")
    assert proxy.stats.delays == proxy.stats.requests + proxy.stats.tunnels >= 1


# --- CONNECT --------------------------------------------------------------------------------


async def raw_connect(
    proxy: HttpProxy, target: str, authorization: str | None
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """A CONNECT by hand: the proxy's status line, and the connection (the tunnel on 200)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    auth = f"Proxy-Authorization: {authorization}\r\n" if authorization else ""
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), reader, writer


async def test_connect_tunnel_by_a_raw_client(
    hostile_origin: HostileOrigin, proxy_farm: ProxyFarm
) -> None:
    proxy = await proxy_farm.http(credentials=CREDENTIALS)
    know(hostile_origin, proxy_farm)
    hostile_origin.add("tunnel.bin", 100 * KIB)
    target = f"127.0.0.1:{hostile_origin.port}"
    refused, _, writer = await raw_connect(proxy, target, None)
    writer.close()
    assert refused.startswith("HTTP/1.1 407") and proxy.stats.tunnels == 0
    status, reader, writer = await raw_connect(proxy, target, proxy.expected_authorization)
    assert status.startswith("HTTP/1.1 200")
    request = f"GET /files/tunnel.bin HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert (
        hashlib.sha256(body).digest()
        == hashlib.sha256(content("tunnel.bin", 1, 0, 100 * KIB)).digest()
    )
    assert proxy.stats.tunnels == 1 and proxy.stats.bytes_down >= 100 * KIB
    assert [entry.proxy for entry in hostile_origin.log] == ["proxy-1"]


async def test_connect_refuses_a_target_off_loopback(proxy_farm: ProxyFarm) -> None:
    proxy = await proxy_farm.http()
    status, _, writer = await raw_connect(proxy, "192.0.2.1:80", None)
    writer.close()
    assert status.startswith("HTTP/1.1 502") and proxy.stats.tunnels == 0
    assert proxy.stats.upstream_ports == set()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_files(authority: trustme.CA, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """An HTTPS origin on 127.0.0.1 serving t.bin: (its URL, the CA file trusting it)."""
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    async with serving_tls(authority, "127.0.0.1") as origin:
        origin.add("t.bin", 200 * KIB)
        yield origin.url("t.bin"), str(ca_file)


async def test_hauler_reaches_https_through_connect(
    proxy_farm: ProxyFarm, tls_files: tuple[str, str], tmp_path: Path
) -> None:
    url, ca_file = tls_files
    proxy = await proxy_farm.http(credentials=CREDENTIALS)
    cli = HaulerRunner(cwd=tmp_path, env={"SSL_CERT_FILE": ca_file})
    record = await get_json(cli, proxy.url, url)
    assert record["error"] is None
    data = (tmp_path / "out" / "t.bin").read_bytes()
    assert (
        hashlib.sha256(data).hexdigest()
        == hashlib.sha256(content("t.bin", 1, 0, len(data))).hexdigest()
    )
    assert len(data) == 200 * KIB
    assert proxy.stats.tunnels >= 1 and proxy.stats.requests == 0
    assert proxy.stats.credentials == {proxy.expected_authorization}


@pytest.mark.parametrize(
    ("mode", "status"), [(ProxyMode.UNAUTHORIZED, 407), (ProxyMode.BAD_GATEWAY, 502)]
)
async def test_a_refused_connect_is_named_the_proxys_failure(
    proxy_farm: ProxyFarm, tls_files: tuple[str, str], tmp_path: Path, mode: ProxyMode, status: int
) -> None:
    """Through CONNECT (https), aiohttp raises its proxy error: hauler says it was the proxy."""
    url, ca_file = tls_files
    proxy = await proxy_farm.http(credentials=CREDENTIALS, mode=mode)
    cli = HaulerRunner(cwd=tmp_path, env={"SSL_CERT_FILE": ca_file})
    record = await get_json(cli, proxy.url, url)
    shown = proxy.url.replace("pr0xy-pw", "***")
    assert record["error"]["class"] == "proxy"
    assert f"the proxy {shown} refused the request ({status}" in record["error"]["message"]
    assert proxy.stats.tunnels == 0 and proxy.stats.refusals >= 1


# --- what hauler reports for a proxy's own failure ---------------------------------------------

# (kind, mode, error class, does the message name the proxy?). A failure hauler can pin on the
# proxy is class ``proxy`` (ProxyFailed: counted against the proxy, retried through another):
# socks failures, a refused CONNECT, and a 407 (only proxies send it). A reset is ``proxy`` only
# when the client's loop sees it as a failed connect (aiohttp's proxy connection error), not
# when it comes on the first read or write (a bare ClientOSError): a race, so None (either).
# An HTTP proxy's 502 on a plain-http request still reads as the origin's would (``transient``).
FAULTS = [
    ("http", ProxyMode.RESET, None, None),
    ("http", ProxyMode.BAD_GATEWAY, "transient", False),
    ("http", ProxyMode.UNAUTHORIZED, "proxy", True),
    ("socks5", ProxyMode.RESET, None, None),
    ("socks5", ProxyMode.BAD_GATEWAY, "proxy", True),
    ("socks5", ProxyMode.UNAUTHORIZED, "proxy", True),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: f"{fault[0]}-{fault[1]}")
async def test_what_hauler_reports_for_a_faulty_proxy(
    hostile_origin: HostileOrigin,
    proxy_farm: ProxyFarm,
    cli: HaulerRunner,
    fault: tuple[str, ProxyMode, str | None, bool | None],
) -> None:
    kind, mode, error_class, names_proxy = fault
    proxy = await (proxy_farm.http(mode=mode) if kind == "http" else proxy_farm.socks5(mode=mode))
    url = hostile_origin.add("faulty.bin", 10 * KIB)
    record = await get_json(cli, proxy.url, url)
    error = record["error"]
    assert error["class"] == error_class or (
        error_class is None and error["class"] in {"proxy", "connection"}
    ), error
    if names_proxy is not None:
        assert ("the proxy" in error["message"]) is names_proxy, error
    assert record["returncode"] == 6  # a network failure, never a fatal refusal
    assert proxy.stats.refusals >= 1 and proxy.stats.upstream_ports == set()
    assert hostile_origin.log == []  # the origin never saw the request: the proxy's fault


async def test_a_proxys_407_and_the_origins_bot_wall_are_told_apart(
    hostile_origin: HostileOrigin, proxy_farm: ProxyFarm, cli: HaulerRunner
) -> None:
    """A proxy refusing its user (407) is the proxy's failure; the origin refusing an account
    with a bot wall (403, through a healthy proxy) is a bot check (the account's)."""
    refusing = await proxy_farm.http(mode=ProxyMode.UNAUTHORIZED)
    healthy = await proxy_farm.http()
    url = hostile_origin.add("walled.bin", KIB)
    hostile_origin.flag_account("flagged")
    by_proxy = (await get_json(cli, refusing.url, url, "-H", "Cookie: acct=flagged"))["error"]
    by_origin = (await get_json(cli, healthy.url, url, "-H", "Cookie: acct=flagged"))["error"]
    assert (by_proxy["class"], by_origin["class"]) == ("proxy", "bot_check")
    assert "(407)" in by_proxy["message"] and "answered 403" in by_origin["message"]
    assert [(e.proxy, e.account, e.status) for e in hostile_origin.log] == [
        ("proxy-2", "flagged", 403)
    ]


# --- the hostile origin: bot walls and rates -------------------------------------------------


async def test_bot_wall_for_flagged_accounts_and_tokens(
    hostile_origin: HostileOrigin, cli: HaulerRunner
) -> None:
    url = hostile_origin.add("walled.bin", 50 * KIB)
    hostile_origin.flag_account("flagged")
    hostile_origin.flag_header("X-Token", "burnt")
    walled = await get_json(cli, None, url, "-H", "Cookie: acct=flagged")
    token = await get_json(cli, None, url, "-H", "X-Token: burnt")
    fine = await get_json(cli, None, url, "-H", "Cookie: acct=clean")
    assert fine["error"] is None
    assert sha256_of(cli.cwd / "out" / "walled.bin") == hostile_origin.sha256("walled.bin")
    # The file engine reads the start of a 403's page: a bot wall is a bot check (bannable:
    # the account is rotated), as the media classifier calls the same words.
    for record in (walled, token):
        assert record["error"]["class"] == "bot_check"
    assert isinstance(classify_message(BOT_WALL_HTML), BotCheck)
    logged = [(e.account, e.status, e.proxy) for e in hostile_origin.log]
    assert logged[0] == ("flagged", 403, DIRECT) and logged[1] == (None, 403, DIRECT)
    assert logged[2][:2] == ("clean", 206)


async def test_rate_limit_answers_429_with_retry_after_per_host() -> None:
    clock = FakeClock()
    origin = await HostileOrigin(clock=clock.monotonic).start()
    try:
        url = origin.add("r.bin", KIB)
        origin.limit(rate_per_s=2, burst=2, retry_after_s=5)
        async with aiohttp.ClientSession() as session:
            answers = [await _status(session, url) for _ in range(3)]
            clock.advance(0.5)  # one token back
            answers += [await _status(session, url), await _status(session, url)]
            other_host = await _status(session, origin.url("r.bin", "localhost"))
    finally:
        await origin.close()
    assert answers == [(200, None), (200, None), (429, "5"), (200, None), (429, "5")]
    assert other_host == (200, None)  # a bucket per Host
    assert origin.statuses() == [200, 200, 429, 200, 429, 200]
    assert origin.max_rate_per_s(5.0) == 6 / 5.0


async def test_hauler_reports_the_429_as_throttled(cli: HaulerRunner) -> None:
    clock = FakeClock()
    origin = await HostileOrigin(clock=clock.monotonic).start()
    try:
        url = origin.add("t.bin", KIB)
        origin.limit(rate_per_s=1, burst=1, retry_after_s=7)
        assert (await get_json(cli, None, url))["error"] is None
        # The clock stood still: no token (another directory: nothing to skip there).
        throttled = await get_json(cli, None, url, out="again")
    finally:
        await origin.close()
    assert throttled["error"]["class"] == "throttled"
    assert origin.statuses()[-1] == 429


def test_max_rate_per_s_is_the_busiest_window() -> None:
    # 10/s for 5 s, then a burst of 20 within one second, then quiet.
    steady = [i / 2 for i in range(20)]  # 2/s for 10 s
    burst = [20 + i / 30 for i in range(30)]  # 30 within one second
    assert max_rate_per_s(steady, 5.0) == 2.0
    assert max_rate_per_s([*steady, *burst, 40.0], 5.0) == 30 / 5.0
    assert max_rate_per_s([], 5.0) == 0.0


async def _status(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    async with session.get(url) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


def test_parse_head_and_basic_credentials() -> None:
    method, target, headers = parse_head(
        b"GET http://127.0.0.1:9/x HTTP/1.1\r\nProxy-Authorization: Basic YTpi\r\n\r\n"
    )
    assert (method, target, headers) == (
        "GET",
        "http://127.0.0.1:9/x",
        {"proxy-authorization": "Basic YTpi"},
    )
    proxy = HttpProxy(credentials=("a", "b"))
    assert proxy.expected_authorization == "Basic " + base64.b64encode(b"a:b").decode()
