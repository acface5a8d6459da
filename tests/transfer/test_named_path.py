"""A name the job gives lands where ``naming.safe_path`` puts it, also on the cheap path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hauler.config import TransferSettings
from hauler.errors import BadRequest
from hauler.naming import safe_path
from hauler.transfer.download import Download
from hauler.transfer.engine import Engine
from hauler.transfer.request import NullProgress, TransferRequest

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
        download = Download(engine, request, NullProgress())
        try:
            expected: Path | type[BadRequest] = safe_path(output_dir, name)
        except BadRequest:
            expected = BadRequest
        if expected is BadRequest:
            with pytest.raises(BadRequest):
                download._named_path(name)
        else:
            assert download._named_path(name) == expected
