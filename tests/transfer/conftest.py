"""Fixtures for the transfer engine tests: the fault-injecting origin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.transfer.origin import Origin


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """A fresh origin on a free 127.0.0.1 port, closed after the test."""
    server = await Origin().start()
    try:
        yield server
    finally:
        await server.close()
