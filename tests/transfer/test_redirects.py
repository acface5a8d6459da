"""Redirects are followed by the fetcher, hop by hop: each hop passes the URL guard (scheme,
private addresses), secret headers stay with their origin, and what cannot work fails at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import hauler.net
from hauler.errors import BadRequest
from hauler.transfer.engine import Engine
from tests.transfer.conftest import KIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Origin

SECRET_HEADERS = {
    "Authorization": "Bearer tok-123",
    "Cookie": "sid=abc",
    "X-Api-Key": "key-456",
}
PLAIN_HEADERS = {"Accept": "application/x-test"}


@pytest.fixture
async def other_origin() -> AsyncIterator[Origin]:
    """A second origin on another port: another origin in the browser's sense."""
    server = await Origin().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def fake_public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's resolver says ``localhost`` is a public host (the connection still goes to
    127.0.0.1) and ``intranet.test`` is a private one."""
    table = {"localhost": ["93.184.216.34"], "intranet.test": ["10.1.2.3"]}

    async def resolve(host: str) -> list[str]:
        return table[host]

    monkeypatch.setattr(hauler.net, "resolve_host", resolve, raising=False)


async def test_a_chain_of_redirects_ends_at_the_last_hop(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("chain.bin", 300 * KIB)
    result = await fetch(engine, origin.url("chain.bin", redirects=3), tmp_path)
    assert sha256_file(result.path) == origin.sha256("chain.bin")
    assert result.final_url == origin.url("chain.bin")
    hops = [r.path for r in origin.requests_for("chain.bin") if r.path.startswith("/redirect/")]
    assert hops == ["/redirect/3/chain.bin", "/redirect/2/chain.bin", "/redirect/1/chain.bin"]


async def test_every_hop_passes_the_private_address_guard(
    origin: Origin, other_origin: Origin, tmp_path: Path, fake_public_dns: None
) -> None:
    other_origin.add("inside.bin", 10 * KIB)
    origin.redirect_to("hop", other_origin.url("inside.bin"))
    origin.redirect_to("by-name", "http://intranet.test/files/inside.bin")
    first = f"http://localhost:{origin.port}/to/hop"
    async with Engine(fast_settings(allow_private=False)) as engine:
        with pytest.raises(BadRequest) as refused:
            await fetch(engine, first, tmp_path)
        message = refused.value.message
        assert "redirect 1 from" in message and other_origin.url("inside.bin") in message
        assert "non-public address 127.0.0.1" in message
        with pytest.raises(BadRequest, match=r"intranet\.test resolves to .*10\.1\.2\.3"):
            await fetch(engine, f"http://localhost:{origin.port}/to/by-name", tmp_path)
    assert [r.path for r in origin.log] == ["/to/hop", "/to/by-name"]  # once each: not retried
    assert other_origin.log == [], "the private hop must never be contacted"


async def test_the_guard_applies_through_a_proxy_too(
    origin: Origin, other_origin: Origin, tmp_path: Path, fake_public_dns: None
) -> None:
    origin.redirect_to("hop", other_origin.url("inside.bin"))
    # The origin answers absolute-form requests: it stands in as the HTTP proxy.
    proxy = f"http://127.0.0.1:{origin.port}"
    async with Engine(fast_settings(allow_private=False, proxy=proxy)) as engine:
        with pytest.raises(BadRequest, match=r"non-public address 127\.0\.0\.1"):
            await fetch(engine, f"http://localhost:{origin.port}/to/hop", tmp_path)
    assert other_origin.log == []


async def test_secret_headers_reach_the_same_origin_only(
    origin: Origin, other_origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    other_origin.add("away.bin", 600 * KIB)
    origin.redirect_to("first", f"{origin.base_url}/to/second", status=301)
    origin.redirect_to("second", other_origin.url("away.bin"), status=307)
    headers = SECRET_HEADERS | PLAIN_HEADERS
    result = await fetch(engine, f"{origin.base_url}/to/first", tmp_path, headers=headers)
    assert sha256_file(result.path) == other_origin.sha256("away.bin")
    assert result.final_url == other_origin.url("away.bin")
    same = origin.log
    assert [r.path for r in same] == ["/to/first", "/to/second"]
    for request in same:
        assert {k.lower(): v for k, v in headers.items()}.items() <= request.headers.items()
    away = other_origin.requests_for("away.bin")
    assert len(away) > 1  # the probe and the other connections' ranges: all without secrets
    for request in away:
        assert request.headers["accept"] == "application/x-test"
        assert not {"authorization", "cookie", "x-api-key"} & request.headers.keys()


@pytest.mark.parametrize(
    "location",
    ["ftp://127.0.0.1/x.bin", "file:///etc/passwd", "data:text/plain,hello", "javascript:x()"],
)
async def test_a_redirect_to_another_scheme_fails_at_once(
    origin: Origin, engine: Engine, tmp_path: Path, location: str
) -> None:
    url = origin.redirect_to("odd", location)
    with pytest.raises(BadRequest, match="unsupported URL scheme") as refused:
        await fetch(engine, url, tmp_path)
    assert "redirect 1 from" in refused.value.message
    assert len(origin.log) == 1, "a permanent error is not retried"


async def test_too_many_redirects_is_a_bad_request(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("loop.bin", KIB)
    with pytest.raises(BadRequest, match=r"too many redirects \(more than 10\)"):
        await fetch(engine, origin.url("loop.bin", redirects=11), tmp_path)
    assert len(origin.log) == 11


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Note", "one\r\nInjected: 1"), ("X-Note", "nul\x00byte"), ("Authorization", "Bearer a\nb")],
)
async def test_a_line_break_in_a_header_value_fails_at_once(
    origin: Origin, engine: Engine, tmp_path: Path, name: str, value: str
) -> None:
    origin.add("h.bin", KIB)
    with pytest.raises(BadRequest, match=f"header '{name}' holds a line break or NUL") as bad:
        await fetch(engine, origin.url("h.bin"), tmp_path, headers={name: value})
    if name == "Authorization":
        assert "Bearer" not in bad.value.message  # a secret's value is never shown
    assert origin.log == []
