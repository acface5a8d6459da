"""Session fixtures: the served files, and each real server started once over them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.servers.fixtures import (
    BINARIES,
    COMMANDS,
    RealServer,
    ServedFiles,
    make_files,
    open_directory,
    start_server,
)


@pytest.fixture(scope="session")
def served_files() -> Iterator[ServedFiles]:
    """The 48 MiB file and the 300 small ones, written once for every server."""
    root = open_directory("hauler-served-")
    try:
        yield make_files(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", params=list(COMMANDS))
def real_server(request: pytest.FixtureRequest, served_files: ServedFiles) -> Iterator[RealServer]:
    """Each real server in its package's default configuration, serving ``served_files``."""
    name: str = request.param
    binary = BINARIES[name]
    if binary is not None and shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        pytest.fail(f"{binary} is not installed; scripts/test installs it with apt-get")
    server = start_server(name, COMMANDS[name], served_files)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
