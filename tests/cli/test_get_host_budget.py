"""``hauler get`` keeps to the host budgets of its store when the store exists (``local/gate``):
a host limited to 5 requests/s by ``hauler host limit`` is fetched no faster by 8 lanes, and
without a store file the same get runs unheld (and creates no store)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.hauler_process import hauler
from tests.fixtures.hostile import HostileOrigin, hostile_origin, max_rate_per_s
from tests.worker.fleet import sha256_of

__all__ = ["hostile_origin"]  # a fixture, imported to be found

FILES = 12


async def test_get_keeps_to_the_host_limit_of_its_store(
    hostile_origin: HostileOrigin, tmp_path: Path
) -> None:
    urls = [hostile_origin.add(f"f{n}.bin", 4096) for n in range(FILES)]
    (tmp_path / "store").mkdir()
    store_url = f"sqlite:///{tmp_path / 'store' / 'state.db'}"
    limited = await hauler(store_url, "host", "limit", "127.0.0.1", "--rate", "5/s")
    assert limited.code == 0, limited.err
    got = await hauler(store_url, "get", "-q", "-j", "8", "-d", str(tmp_path / "out"), *urls)
    assert got.code == 0, got.err
    for n in range(FILES):
        assert sha256_of(tmp_path / "out" / f"f{n}.bin") == hostile_origin.sha256(f"f{n}.bin")
    times = sorted(hostile_origin.times)
    assert len(times) == FILES
    # 5/s with a burst of 1: 12 requests take 2.2 s, never two within 0.2 s (a little jitter).
    assert times[-1] - times[0] >= (FILES - 1) / 5 - 0.05
    assert max_rate_per_s(times, 1.0) <= 6.0
    listed = await hauler(store_url, "host", "list", "--json")
    (budget,) = listed.json()
    assert budget["requests"] == FILES and budget["connections_in_use"] == 0


async def test_get_without_a_store_file_runs_unheld_and_creates_none(
    hostile_origin: HostileOrigin, tmp_path: Path
) -> None:
    urls = [hostile_origin.add(f"f{n}.bin", 4096) for n in range(FILES)]
    store = tmp_path / "store" / "state.db"
    (tmp_path / "store").mkdir()
    got = await hauler(f"sqlite:///{store}", "get", "-q", "-j", "8", "-d", str(tmp_path), *urls)
    assert got.code == 0, got.err
    times = sorted(hostile_origin.times)
    assert len(times) == FILES and times[-1] - times[0] < 1.0
    assert not store.exists()
