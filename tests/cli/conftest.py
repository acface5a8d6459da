"""Fixtures for the `hauler get` end-to-end tests (the origin comes from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.process import HaulerRunner


@pytest.fixture
def cli(tmp_path: Path) -> HaulerRunner:
    """Runs the real `hauler` command in ``tmp_path``, isolated from the user's config."""
    return HaulerRunner(cwd=tmp_path)
