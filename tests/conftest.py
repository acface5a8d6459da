"""Fixtures shared by every test package (each block is self-contained; append, don't edit)."""

# --- Ctrl-C reaches the hauler processes the tests start ----------------------------------------
import signal

# A shell starts a background job with SIGINT ignored, and an ignored signal stays ignored across
# exec: the Ctrl-C tests' hauler children would never see theirs (a CI runner may start us so).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# --- end Ctrl-C -----------------------------------------------------------------------------------

# --- redis-server (store engineer) ---------------------------------------------------------
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fixtures.redis_server import RedisServer, start_redis
from tests.transfer.origin import Origin


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server (AOF, appendfsync always) for the session; tests share it through
    unique namespaces and never FLUSHDB it."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, free to be killed (``kill``) and ``restart``-ed."""
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


# --- end redis-server ------------------------------------------------------------------------

# --- job stores on both backends (fleet engineer) ---------------------------------------------
from tests.fixtures.stores import clock, open_more, store, store_url  # noqa: E402, F401

# --- end job stores ----------------------------------------------------------------------------


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """A fresh fault-injecting origin on a free 127.0.0.1 port, closed after the test."""
    server = await Origin().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real ENOSPC from the kernel (needs root, as CI has)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


# --- no proxy from the environment (trust helper B) -------------------------------------------
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """hauler honours http_proxy & co. as curl does; every test talks to 127.0.0.1, so none
    inherits a proxy from the machine (subprocesses copy this cleared environment). Tests of the
    proxy environment set the variables themselves."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --- end no proxy --------------------------------------------------------------------------------

# --- slow tests first ------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort: the rest keep their order). With four processes, a
    90 s recording collected last would run alone at the end and hold the whole suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# --- end slow tests first --------------------------------------------------------------------
