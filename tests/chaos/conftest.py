"""Fixtures for chaos tests: the fault-injecting origin (stores come from tests/conftest.py)."""

from tests.transfer.conftest import origin

__all__ = ["origin"]
