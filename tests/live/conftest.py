"""Fixtures for the live tests: a live HLS stream ffmpeg writes in real time and serves from
127.0.0.1, and an HTTP-FLV source ffmpeg serves itself; both killed after the test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.live.flv import FlvSource, flv_source
from tests.live.stream import HlsStream, hls_stream


@pytest.fixture(autouse=True)
def _needs_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg and ffprobe are needed: scripts/test installs them with apt-get")


@pytest.fixture
async def hls(tmp_path: Path) -> AsyncIterator[HlsStream]:
    """A live stream with a window of 6 one-second segments, already listing one."""
    async with hls_stream(tmp_path / "stream") as stream:
        yield stream


@pytest.fixture
async def flv() -> AsyncIterator[FlvSource]:
    """An HTTP-FLV stream waiting for its one client."""
    async with flv_source() as source:
        yield source
