"""Fixtures for the transfer engine tests: the fault-injecting origin and a fast engine."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hauler.config import TransferSettings
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest, TransferResult

KIB = 1024
MIB = 1024 * KIB


def fast_settings(**overrides: Any) -> TransferSettings:
    """Engine settings for tests: small splits, short windows, quick retries."""
    values: dict[str, Any] = {
        "connections": 4,
        "min_split_bytes": 64 * KIB,
        "block_bytes": 64 * KIB,
        "control_flush_bytes": 64 * KIB,
        "control_flush_s": 0.1,
        "connect_timeout_s": 5.0,
        "read_timeout_s": 5.0,
        "lowest_speed_bps": 0,
        "stall_window_s": 0.5,
        "segment_retries": 4,
        "retry_base_s": 0.01,
        "retry_cap_s": 0.05,
        "max_retry_after_s": 2.0,
    }
    values.update(overrides)
    return TransferSettings(**values)


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    """An engine with ``fast_settings()``."""
    async with Engine(fast_settings()) as shared:
        yield shared


def sha256_file(path: Path) -> str:
    """The sha256 of a file on disk."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def fetch(engine: Engine, url: str, output_dir: Path, **options: Any) -> TransferResult:
    """``engine.download`` of ``url`` into ``output_dir`` with request ``options``."""
    return await engine.download(TransferRequest(url=url, output_dir=output_dir, **options))


def leftovers(directory: Path) -> list[str]:
    """Names of partial or control files left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)
