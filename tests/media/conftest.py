"""Fixtures for the media tests: the library ffmpeg makes once per session, and a fresh
loopback media site over it per test (its request log starts empty)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

from tests.media.library import MediaLibrary, build_library
from tests.media.site import MediaSite, media_site


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    """The media files (MP4s, an HLS VOD, a DASH VOD), made by ffmpeg once for the session."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg and ffprobe are needed: scripts/test installs them with apt-get")
    return build_library(tmp_path_factory.mktemp("media-library"))


@pytest.fixture
async def site(library: MediaLibrary) -> AsyncIterator[MediaSite]:
    """The loopback media site over the library, on a free 127.0.0.1 port."""
    async with media_site(library.root) as running:
        yield running
