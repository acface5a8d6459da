"""Every fault the origin can inject, each handled, each ending with a sha256 comparison."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from hauler.clock import FakeClock
from hauler.errors import (
    ConnectionFailed,
    ConnectionRefused,
    Forbidden,
    Gone,
    HaulerError,
    InvalidResponse,
    NotFound,
    Stalled,
    Throttled,
)
from hauler.transfer.body import RangeAsk
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, leftovers, sha256_file
from tests.transfer.origin import Fault, Origin


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFound), (410, Gone), (401, Forbidden), (403, Forbidden), (400, Forbidden)],
)
async def test_fatal_statuses_fail_at_once_naming_url_and_status(
    origin: Origin, engine: Engine, tmp_path: Path, status: int, error: type[HaulerError]
) -> None:
    origin.add("f.bin", 100 * KIB, faults={1: Fault(status=status)})
    with pytest.raises(error, match=rf"127\.0\.0\.1.*f\.bin.*{status}"):
        await fetch(engine, origin.url("f.bin"), tmp_path)
    assert len(origin.requests_for("f.bin")) == 1


async def test_missing_file_is_not_found(origin: Origin, engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="404"):
        await fetch(engine, origin.url("nothing-here.bin"), tmp_path)


async def test_503_and_429_with_retry_after_are_retried(origin: Origin, tmp_path: Path) -> None:
    faults = {1: Fault(status=503, retry_after="0"), 2: Fault(status=429, retry_after="0")}
    origin.add("t.bin", 1 * MIB, faults=faults)
    async with Engine(fast_settings()) as engine:
        result = await fetch(engine, origin.url("t.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("t.bin")
    assert [r.status for r in origin.requests_for("t.bin")][:3] == [503, 429, 206]


@pytest.mark.parametrize(
    ("header", "expected_s"),
    [("7", 7.0), ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0), ("9999", 300.0), ("soon", None)],
)
async def test_retry_after_becomes_the_errors_floor(
    origin: Origin, tmp_path: Path, header: str, expected_s: float | None
) -> None:
    origin.add("ra.bin", 10 * KIB, faults={1: Fault(status=503, retry_after=header)})
    clock = FakeClock(start=1_700_000_000.0)  # 2023-11-14 22:13:20 UTC
    async with Engine(fast_settings(max_retry_after_s=300.0), clock) as engine:
        fetcher = engine.fetcher(TransferRequest(url=origin.url("ra.bin"), output_dir=tmp_path))
        with pytest.raises(Throttled) as failure:
            await fetcher.open(origin.url("ra.bin"), RangeAsk())
    assert failure.value.retry_after_s == expected_s
    if expected_s is not None:
        decision = engine.policy.decide(failure.value, 1, 5)
        assert decision.delay_s >= expected_s


async def test_retry_after_http_date_is_capped(origin: Origin, tmp_path: Path) -> None:
    """An hour away is waited for 30 s (the cap), on the fake clock: no real wait."""
    clock = FakeClock(start=time.time())
    far_future = formatdate(clock.now() + 3600, usegmt=True)
    origin.add("d.bin", 200 * KIB, faults={1: Fault(status=503, retry_after=far_future)})
    async with Engine(fast_settings(max_retry_after_s=30.0), clock) as engine:
        began = clock.monotonic()
        result = await fetch(engine, origin.url("d.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("d.bin")
    assert 30.0 <= clock.monotonic() - began < 31.0


async def test_throttled_when_retries_run_out(origin: Origin, tmp_path: Path) -> None:
    origin.add("busy.bin", 100 * KIB, faults={i: Fault(status=429) for i in range(1, 10)})
    async with Engine(fast_settings(segment_retries=2)) as engine:
        with pytest.raises(Throttled, match="429"):
            await fetch(engine, origin.url("busy.bin"), tmp_path)
    assert len(origin.requests_for("busy.bin")) == 3


async def test_reset_mid_body_is_retried_from_where_it_stopped(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    faults = {1: Fault(reset_after=100 * KIB), 2: Fault(reset_after=10 * KIB)}
    origin.add("r.bin", 2 * MIB, faults=faults)
    result = await fetch(engine, origin.url("r.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("r.bin")
    assert origin.bytes_sent("r.bin") < 2 * MIB + 2 * 256 * KIB, "resets must not refetch all"


async def test_connection_failed_when_every_attempt_resets(origin: Origin, tmp_path: Path) -> None:
    origin.add("dead.bin", 1 * MIB, faults={i: Fault(reset_after=0) for i in range(1, 30)})
    async with Engine(fast_settings(segment_retries=2)) as engine:
        with pytest.raises(ConnectionFailed, match=r"dead\.bin"):
            await fetch(engine, origin.url("dead.bin"), tmp_path)


async def test_clean_close_with_a_short_body_is_never_accepted(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("short.bin", 1 * MIB, faults={1: Fault(close_after=300 * KIB)})
    result = await fetch(engine, origin.url("short.bin"), tmp_path, connections=1)
    assert result.size == 1 * MIB
    assert sha256_file(result.path) == origin.sha256("short.bin")
    assert len(origin.requests_for("short.bin")) == 2


@pytest.mark.parametrize("delta", [5000, -5000])
async def test_lying_content_length_is_detected(
    origin: Origin, engine: Engine, tmp_path: Path, delta: int
) -> None:
    origin.add("lie.bin", 1 * MIB, faults={2: Fault(length_delta=delta)})
    result = await fetch(engine, origin.url("lie.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("lie.bin")


async def test_origin_without_ranges_gets_one_connection(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("nr.bin", 2 * MIB, accepts_ranges=False)
    result = await fetch(engine, origin.url("nr.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("nr.bin")
    assert [r.status for r in origin.requests_for("nr.bin")] == [200]


async def test_range_ignored_mid_file_restarts_on_one_connection(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    faults = {i: Fault(ignore_range=True) for i in range(2, 40)}
    origin.add("ign.bin", 2 * MIB, faults=faults)
    result = await fetch(engine, origin.url("ign.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("ign.bin")
    last = origin.requests_for("ign.bin")[-1]
    assert (last.status, last.bytes_sent) == (200, 2 * MIB)
    assert len(origin.requests_for("ign.bin")) < 12


async def test_unranged_stream_restarts_from_zero_after_a_reset(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("nr.bin", 1 * MIB, accepts_ranges=False, faults={1: Fault(reset_after=200 * KIB)})
    result = await fetch(engine, origin.url("nr.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("nr.bin")


async def test_chunked_body_of_unknown_size(origin: Origin, engine: Engine, tmp_path: Path) -> None:
    origin.add("ch.bin", 1 * MIB + 17, chunked=True)
    result = await fetch(engine, origin.url("ch.bin"), tmp_path)
    assert result.size == 1 * MIB + 17
    assert sha256_file(result.path) == origin.sha256("ch.bin")
    assert leftovers(tmp_path) == []


async def test_chunked_body_cut_short_is_fetched_again(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("ch.bin", 1 * MIB, chunked=True, faults={1: Fault(close_after=128 * KIB)})
    result = await fetch(engine, origin.url("ch.bin"), tmp_path)
    assert result.size == 1 * MIB
    assert sha256_file(result.path) == origin.sha256("ch.bin")


async def test_stalled_connection_is_reopened(origin: Origin, tmp_path: Path) -> None:
    origin.add("st.bin", 1 * MIB, faults={2: Fault(stall_after=16 * KIB)})
    settings = fast_settings(lowest_speed_bps=10 * KIB, stall_window_s=0.4, connections=2)
    async with Engine(settings) as engine:
        result = await fetch(engine, origin.url("st.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("st.bin")
    assert len(origin.requests_for("st.bin")) >= 3


async def test_too_slow_connection_is_reopened(origin: Origin, tmp_path: Path) -> None:
    origin.add("slow.bin", 1 * MIB, faults={2: Fault(rate_bps=4 * KIB)})
    settings = fast_settings(lowest_speed_bps=64 * KIB, stall_window_s=0.4, connections=2)
    async with Engine(settings) as engine:
        result = await fetch(engine, origin.url("slow.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("slow.bin")
    second = origin.requests_for("slow.bin")[1]
    assert second.bytes_sent < 64 * KIB, "the slow response must have been cut"


async def test_stalled_everywhere_fails_as_stalled(origin: Origin, tmp_path: Path) -> None:
    faults = {i: Fault(stall_after=0) for i in range(1, 20)}
    origin.add("stuck.bin", 256 * KIB, faults=faults)
    settings = fast_settings(lowest_speed_bps=1024, stall_window_s=0.2, segment_retries=1)
    async with Engine(settings) as engine:
        with pytest.raises(Stalled, match=r"stuck\.bin"):
            await fetch(engine, origin.url("stuck.bin"), tmp_path, connections=1)


async def test_endgame_takes_over_a_far_slower_connection(origin: Origin, tmp_path: Path) -> None:
    origin.add("eg.bin", 2 * MIB, faults={2: Fault(rate_bps=24 * KIB)})
    settings = fast_settings(min_split_bytes=256 * KIB, connections=4)
    async with Engine(settings) as engine:
        result = await fetch(engine, origin.url("eg.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("eg.bin")
    slow = origin.requests_for("eg.bin")[1]
    start, _, last = (slow.range or "").removeprefix("bytes=").partition("-")
    assert slow.bytes_sent < int(last) + 1 - int(start), "the slow tail must have been taken over"


def _rate_bps(nbytes: int, clock: FakeClock, began: float) -> float:
    """Bytes per second of the fake clock: only the limiter's sleeps move it, so without the
    limiter the time is 0 and the rate infinite."""
    elapsed = clock.monotonic() - began
    return nbytes / elapsed if elapsed > 0 else float("inf")


async def test_per_file_rate_limit_keeps_the_rate(origin: Origin, tmp_path: Path) -> None:
    origin.add("lim.bin", 2 * MIB)
    clock = FakeClock()
    async with Engine(fast_settings(), clock) as engine:
        began = clock.monotonic()
        result = await fetch(engine, origin.url("lim.bin"), tmp_path, limit_rate_bps=2 * MIB)
    assert sha256_file(result.path) == origin.sha256("lim.bin")
    assert 0.95 * 2 * MIB <= _rate_bps(2 * MIB, clock, began) <= 2 * MIB


async def test_probe_answered_200_still_splits_when_ranges_are_advertised(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("p200.bin", 2 * MIB, faults={1: Fault(ignore_range=True)})
    result = await fetch(engine, origin.url("p200.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("p200.bin")
    statuses = [r.status for r in origin.requests_for("p200.bin")]
    assert statuses[0] == 200 and statuses.count(206) >= 3


async def test_connections_are_not_capped_at_16(origin: Origin, tmp_path: Path) -> None:
    origin.add("wide.bin", 4 * MIB)
    async with Engine(fast_settings(connections=32, min_split_bytes=64 * KIB)) as engine:
        result = await fetch(engine, origin.url("wide.bin"), tmp_path)
    assert sha256_file(result.path) == origin.sha256("wide.bin")
    first_ranges = [r.range for r in origin.requests_for("wide.bin")[:32]]
    assert len(set(first_ranges)) == 32


async def test_overall_rate_limit_is_shared_by_every_file(origin: Origin, tmp_path: Path) -> None:
    """Two files at once under a 4 MiB/s engine limit: 4 MiB/s together, not each."""
    names = ("o1.bin", "o2.bin")
    for name in names:
        origin.add(name, 2 * MIB)
    clock = FakeClock()
    async with Engine(fast_settings(limit_rate_bps=4 * MIB), clock) as engine:
        began = clock.monotonic()
        results = await asyncio.gather(*(fetch(engine, origin.url(n), tmp_path) for n in names))
    for name, result in zip(names, results, strict=True):
        assert sha256_file(result.path) == origin.sha256(name)
    assert 0.95 * 4 * MIB <= _rate_bps(4 * MIB, clock, began) <= 4 * MIB


async def test_own_rate_limit_is_not_mistaken_for_a_slow_origin(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("own.bin", 1 * MIB)
    settings = fast_settings(lowest_speed_bps=1 * MIB, stall_window_s=0.2, segment_retries=0)
    async with Engine(settings) as engine:
        result = await fetch(engine, origin.url("own.bin"), tmp_path, limit_rate_bps=1 * MIB)
    assert sha256_file(result.path) == origin.sha256("own.bin")


async def test_connection_refused_fails_at_once_naming_host_port_and_reason(
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Each retry would wait a minute: only a probe that gives up at once ends inside the bound.
    settings = fast_settings(segment_retries=3, retry_base_s=60.0, retry_cap_s=60.0)
    async with Engine(settings) as engine, asyncio.timeout(10):
        with pytest.raises(ConnectionRefused) as raised:
            await fetch(engine, f"http://127.0.0.1:{port}/x.bin", tmp_path)
    message = str(raised.value)
    assert f"cannot connect to 127.0.0.1:{port} (Connection refused)" in message
    assert "ssl:" not in message and "Connect call failed" not in message


def _always(fault: Fault, times: int = 10) -> dict[int, Fault]:
    """The same fault on each of the first ``times`` requests (a server that always does it)."""
    return dict.fromkeys(range(1, times + 1), fault)


async def test_more_bytes_than_content_length_keeps_the_declared_bytes(
    origin: Origin, tmp_path: Path
) -> None:
    # curl's answer: the file is the declared bytes; what follows them is not the file.
    origin.add("long.bin", 1 * MIB, faults=_always(Fault(extra_bytes=1000)))
    origin.add("after.bin", 200 * KIB)
    async with Engine(fast_settings(connections=1)) as engine:
        result = await fetch(engine, origin.url("long.bin"), tmp_path)
        assert result.size == 1 * MIB
        assert sha256_file(result.path) == origin.sha256("long.bin")
        assert len(origin.requests_for("long.bin")) == 1
        # The connection that carried the extra bytes is not reused for the next file.
        after = await fetch(engine, origin.url("after.bin"), tmp_path)
    assert sha256_file(after.path) == origin.sha256("after.bin")
    assert len(origin.requests_for("after.bin")) == 1


async def test_extra_bytes_aiohttp_cannot_parse_fail_once_and_briefly(
    origin: Origin, tmp_path: Path
) -> None:
    # A small body and its extra bytes arrive in one read: aiohttp's parser rejects the whole
    # answer. One try (the server says it again), a short message without the server's bytes.
    origin.add("short.bin", 10 * KIB, faults=_always(Fault(extra_bytes=20_000)))
    origin.add("after.bin", 200 * KIB)
    async with Engine(fast_settings()) as engine:
        with pytest.raises(InvalidResponse) as raised:
            await fetch(engine, origin.url("short.bin"), tmp_path)
        after = await fetch(engine, origin.url("after.bin"), tmp_path)
    message = str(raised.value)
    assert re.fullmatch(
        r"http://127\.0\.0\.1:\d+/files/short\.bin: the answer is not valid HTTP \(.{1,120}\)",
        message,
    )
    assert len(message) < 200 and "\\x" not in message
    assert len(origin.requests_for("short.bin")) == 1
    assert leftovers(tmp_path) == [] and not (tmp_path / "short.bin").exists()
    assert sha256_file(after.path) == origin.sha256("after.bin")
