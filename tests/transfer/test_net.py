"""The URL guard, credential redaction, sessions per proxy, and the token buckets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.errors import BadRequest, ConnectionFailed
from hauler.net import Sessions, check_url, is_public_address
from hauler.redact import redact_url
from hauler.transfer.engine import Engine
from hauler.transfer.throttle import TokenBucket
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Origin


def test_redact_url_hides_passwords_only() -> None:
    assert redact_url("socks5://bob:hunter2@proxy:1080") == "socks5://bob:***@proxy:1080"
    assert redact_url("http://example.com/a") == "http://example.com/a"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:x"])
async def test_only_allowed_schemes(url: str) -> None:
    with pytest.raises(BadRequest, match="scheme"):
        await check_url(url, fast_settings())


async def test_private_addresses_refused_unless_allowed(origin: Origin, tmp_path: Path) -> None:
    origin.add("p.bin", 10 * KIB)
    with pytest.raises(BadRequest, match=r"127\.0\.0\.1"):
        await check_url(origin.url("p.bin"), fast_settings(allow_private=False))
    async with Engine(fast_settings(allow_private=False)) as engine:
        with pytest.raises(BadRequest):
            await fetch(engine, origin.url("p.bin"), tmp_path)
    assert origin.log == [], "a refused URL must not be contacted"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.1.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_socks_proxies_get_their_own_cached_session() -> None:
    sessions = Sessions(fast_settings())
    try:
        direct, direct_proxy = sessions.for_proxy(None)
        http, http_proxy = sessions.for_proxy("http://u:p@127.0.0.1:3128")
        socks, socks_proxy = sessions.for_proxy("socks5://u:p@127.0.0.1:1080")
        assert direct is http and direct_proxy is None and http_proxy == "http://u:p@127.0.0.1:3128"
        assert socks is not direct and socks_proxy is None
        assert sessions.for_proxy("socks5://u:p@127.0.0.1:1080")[0] is socks
    finally:
        await sessions.close()


async def test_proxy_credentials_never_reach_errors_or_logs(
    origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    origin.add("x.bin", 10 * KIB)
    caplog.set_level(logging.DEBUG)
    async with Engine(fast_settings(segment_retries=0)) as engine:
        with pytest.raises(ConnectionFailed) as failure:
            await fetch(
                engine, origin.url("x.bin"), tmp_path, proxy="http://bob:s3cret@127.0.0.1:1"
            )
    assert "s3cret" not in str(failure.value)
    assert "s3cret" not in caplog.text


def test_token_bucket_makes_debtors_wait_in_proportion() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, clock, burst_s=1.0)
    # No burst at the start: the average from the first byte on is the rate.
    assert bucket.delay_for(1000) == pytest.approx(1.0)
    clock.advance(1.0)
    assert bucket.delay_for(500) == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.delay_for(500) == pytest.approx(0.5)
    # After a pause, up to burst_s of bytes pass without waiting, and no more.
    clock.advance(10)
    assert bucket.delay_for(1000) == 0.0
    assert bucket.delay_for(100) == pytest.approx(0.1)


def test_token_bucket_average_never_exceeds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10 * MIB, clock, burst_s=0.25)
    started, sent = clock.monotonic(), 0
    while sent < 32 * MIB:  # a reader that reads 256 KiB blocks as fast as it is allowed
        clock.advance(bucket.delay_for(256 * KIB))
        sent += 256 * KIB
    assert sent / (clock.monotonic() - started) <= 10 * MIB * 1.01


async def test_http_proxy_is_used_with_its_credentials(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("via.bin", 300 * KIB)
    proxy = f"http://bob:s3cret@127.0.0.1:{origin.port}"
    # The origin also answers absolute-form requests, so it can stand in as the proxy.
    result = await fetch(engine, "http://example.invalid/files/via.bin", tmp_path, proxy=proxy)
    assert sha256_file(result.path) == origin.sha256("via.bin")
    assert all("proxy-authorization" in r.headers for r in origin.requests_for("via.bin"))
