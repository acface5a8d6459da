"""A name the job gives lands where ``naming.safe_path`` puts it, also on the cheap path."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from hauler.config import TransferSettings
from hauler.errors import BadRequest
from hauler.naming import MAX_FILE_NAME_BYTES, safe_path
from hauler.transfer.download import Download
from hauler.transfer.engine import Engine
from hauler.transfer.request import NullProgress, TransferRequest
from tests.transfer.conftest import MIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Origin

NAMES = ["a.bin", "present.bin", "inside-link", "outside-link", "sub/x.bin", "..", "CON", "a?b"]


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "present.bin").write_bytes(b"x")
    (out / "target.bin").write_bytes(b"y")
    os.symlink(out / "target.bin", out / "inside-link")
    os.symlink(tmp_path / "elsewhere.bin", out / "outside-link")
    return out


@pytest.mark.parametrize("name", NAMES)
async def test_named_path_matches_safe_path(output_dir: Path, name: str) -> None:
    async with Engine(TransferSettings()) as engine:
        request = TransferRequest(url="http://127.0.0.1:9/x", output_dir=output_dir, filename=name)
        download = Download(engine.attempt(request), request, NullProgress())
        try:
            expected: Path | type[BadRequest] = safe_path(output_dir, name)
        except BadRequest:
            expected = BadRequest
        if expected is BadRequest:
            with pytest.raises(BadRequest):
                download._named_path(name)
        else:
            assert download._named_path(name) == expected


# 300 bytes of UTF-8 (2- and 3-byte characters) and an extension: over the 255-byte limit.
LONG = "é" * 90 + "字" * 40 + ".bin"


@pytest.mark.parametrize("source", ["url", "disposition", "filename"])
async def test_a_300_byte_name_downloads(origin: Origin, tmp_path: Path, source: str) -> None:
    assert len(LONG.encode("utf-8")) == 304
    served = LONG if source == "url" else "plain.bin"
    remote = origin.add(served, 2 * MIB)
    if source == "disposition":
        remote.disposition = f"attachment; filename*=UTF-8''{quote(LONG)}"
    options = {"filename": LONG} if source == "filename" else {}
    # Many connections and small flushes: the control file and its temp files are written.
    async with Engine(fast_settings(connections=4)) as engine:
        result = await fetch(engine, origin.url(served), tmp_path, **options)
    assert sha256_file(result.path) == origin.sha256(served)
    assert result.path.name.endswith(".bin") and result.path.name.startswith("é")
    assert len(result.path.name.encode("utf-8")) <= MAX_FILE_NAME_BYTES
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]
