"""Fixtures for the `hauler get` end-to-end tests: the in-process origin and a command runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cli.process import HaulerRunner
from tests.transfer.origin import Origin


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """A fresh fault-injecting origin on a free 127.0.0.1 port."""
    server = await Origin().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def cli(tmp_path: Path) -> HaulerRunner:
    """Runs the real `hauler` command in ``tmp_path``, isolated from the user's config."""
    return HaulerRunner(cwd=tmp_path)
