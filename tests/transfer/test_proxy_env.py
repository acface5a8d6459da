"""The proxy environment (http_proxy, https_proxy, all_proxy, no_proxy) read as curl reads it,
end to end through a real proxy, and what a failing proxy says."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hauler.errors import ConnectionFailed
from hauler.net import Sessions, bypasses_proxy, env_proxy, proxy_environment
from hauler.transfer.engine import Engine
from tests.cli.process import HaulerRunner
from tests.fixtures.redis_server import free_port
from tests.transfer.conftest import KIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Origin

ENV = {
    "http_proxy": "http://web:3128",
    "https_proxy": "http://secure:3129",
    "no_proxy": "internal.example, .corp.example,10.0.0.0/8, [::1], example.org:8080",
}


@pytest.mark.parametrize(
    ("url", "proxy"),
    [
        ("http://a.example/x", "http://web:3128"),
        ("https://a.example/x", "http://secure:3129"),
        ("http://internal.example/x", None),
        ("http://deep.internal.example/x", None),  # sub-domains of an entry
        ("http://notinternal.example/x", "http://web:3128"),  # not a suffix at a dot
        ("http://corp.example/x", None),  # a leading dot matches the domain itself too
        ("http://10.9.8.7/x", None),  # CIDR
        ("http://11.0.0.1/x", "http://web:3128"),
        ("http://[::1]:8000/x", None),
        ("http://example.org:8080/x", None),  # host:port: that port only
        ("http://example.org/x", "http://web:3128"),
        ("http://INTERNAL.example./x", None),  # case, trailing dot
    ],
)
def test_env_proxy_follows_curl_rules(url: str, proxy: str | None) -> None:
    assert env_proxy(url, proxy_environment(ENV)) == proxy


def test_variables_lower_case_wins_all_proxy_and_schemeless() -> None:
    env = proxy_environment(
        {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2", "ALL_PROXY": "p:3"}
    )
    assert env_proxy("http://h/x", env) == "http://lower:2"
    assert env_proxy("https://h/x", env) == "http://p:3"  # all_proxy; no scheme: HTTP proxy
    socks = proxy_environment({"all_proxy": "socks5h://s:1080", "NO_PROXY": "*"})
    assert env_proxy("http://h/x", socks) is None  # "*" bypasses everything
    assert env_proxy("http://h/x", {"all_proxy": "socks5h://s:1080"}) == "socks5h://s:1080"
    cgi = proxy_environment({"HTTP_PROXY": "http://from-a-client:1", "REQUEST_METHOD": "GET"})
    assert env_proxy("http://h/x", cgi) is None  # httpoxy: a CGI's HTTP_PROXY is a header
    assert env_proxy("http://h/x", proxy_environment({"HTTP_PROXY": "http://up:1"})) == (
        "http://up:1"
    )


def test_no_proxy_entries() -> None:
    assert bypasses_proxy("127.0.0.1", 80, "localhost,127.0.0.1")
    assert not bypasses_proxy("127.0.0.2", 80, "localhost,127.0.0.1")
    assert bypasses_proxy("127.0.0.2", 80, "127.0.0.0/8")
    assert not bypasses_proxy("h.example", 80, "h.example:81")
    assert not bypasses_proxy("h.example", 80, "")


async def test_explicit_proxy_wins_and_socks_from_the_environment_gets_its_session() -> None:
    sessions = Sessions(fast_settings(), environ={"all_proxy": "socks5://u:p@127.0.0.1:1080"})
    try:
        direct, explicit = sessions.for_url("http://h/x", "http://mine:3128")
        socks, proxy_arg = sessions.for_url("http://h/x", None)
        assert explicit == "http://mine:3128" and socks is not direct and proxy_arg is None
    finally:
        await sessions.close()


class LoggingProxy:
    """A tiny real HTTP proxy: forwards absolute-URI GETs to their origin, one per connection,
    and logs each request line."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> LoggingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.requests.append(f"{method} {target}")
            host_port, _, path = target.removeprefix("http://").partition("/")
            host, _, port = host_port.partition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
            rest = head.split(b"\r\n", 1)[1]
            up_writer.write(f"{method} /{path} HTTP/1.1\r\nConnection: close\r\n".encode() + rest)
            answer = await up_reader.read()  # the origin closes: Connection: close
            up_writer.close()
            # One request per connection: tell the client not to reuse it.
            answer = answer.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
            writer.write(answer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[LoggingProxy]:
    server = await LoggingProxy().start()
    try:
        yield server
    finally:
        await server.close()


async def test_get_goes_through_http_proxy_unless_no_proxy(
    origin: Origin, proxy: LoggingProxy, tmp_path: Path
) -> None:
    origin.add("env.bin", 100 * KIB)
    url = origin.url("env.bin")
    via = HaulerRunner(tmp_path, env={"http_proxy": f"http://127.0.0.1:{proxy.port}"})
    done = await via.run("get", "-d", "out", url)
    assert done.returncode == 0, done.stderr
    assert sha256_file(tmp_path / "out" / "env.bin") == origin.sha256("env.bin")
    assert proxy.requests and all(r == f"GET {url}" for r in proxy.requests)

    seen = len(proxy.requests)
    env = {"http_proxy": f"http://127.0.0.1:{proxy.port}", "no_proxy": "localhost,127.0.0.1"}
    direct = await HaulerRunner(tmp_path, env=env).run("get", "-d", "direct", url)
    assert direct.returncode == 0, direct.stderr
    assert sha256_file(tmp_path / "direct" / "env.bin") == origin.sha256("env.bin")
    assert len(proxy.requests) == seen, "no_proxy=127.0.0.1 must bypass the proxy"


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h", "socks4a"])
async def test_a_refused_proxy_says_so_without_its_password(
    origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture, scheme: str
) -> None:
    origin.add("p.bin", KIB)
    port = free_port()
    dead = f"{scheme}://bob:s3cret-pw@127.0.0.1:{port}"
    caplog.set_level(logging.INFO)
    async with Engine(fast_settings(segment_retries=2, proxy=dead)) as engine:
        with pytest.raises(ConnectionFailed) as failed:
            await fetch(engine, origin.url("p.bin"), tmp_path)
    message = failed.value.message
    shown = f"{scheme}://bob:***@127.0.0.1:{port}"
    assert f"cannot connect to the proxy {shown} (Connection refused)" in message
    assert "s3cret-pw" not in caplog.text + message
    assert origin.log == []


class Socks5Proxy:
    """A tiny real SOCKS5 proxy (no authentication, CONNECT only) that logs its targets."""

    def __init__(self) -> None:
        self.targets: list[tuple[str, int]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> Socks5Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, count = await reader.readexactly(2)
            await reader.readexactly(count)
            writer.write(b"\x05\x00")  # no authentication
            _, _, _, kind = await reader.readexactly(4)  # CONNECT assumed
            if kind == 3:  # a name: the proxy resolves it (socks5h)
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            else:
                host = str(ipaddress.ip_address(await reader.readexactly(4 if kind == 1 else 16)))
            port = int.from_bytes(await reader.readexactly(2), "big")
            self.targets.append((host, port))
            up_reader, up_writer = await asyncio.open_connection(host, port)
            writer.write(b"\x05\x00\x00\x01" + bytes(6))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_all_proxy_socks5_carries_the_download(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    origin.add("socks.bin", 300 * KIB)
    socks = await Socks5Proxy().start()
    try:
        monkeypatch.setenv("ALL_PROXY", f"{scheme}://127.0.0.1:{socks.port}")
        async with Engine(fast_settings()) as engine:
            # socks5h hands a name to the proxy; socks5 resolves it first (curl's meaning).
            host = "localhost" if scheme == "socks5h" else "127.0.0.1"
            url = f"http://{host}:{origin.port}/files/socks.bin"
            result = await fetch(engine, url, tmp_path)
    finally:
        await socks.close()
    assert sha256_file(result.path) == origin.sha256("socks.bin")
    assert {target for target, _ in socks.targets} == {host}
