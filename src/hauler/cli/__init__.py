"""The ``hauler`` command line. Only this package prints (through rich)."""

from __future__ import annotations

from hauler.cli import get, queue, worker  # noqa: F401  (each module registers its commands)
from hauler.cli.app import app


def main() -> None:
    """Entry point of the ``hauler`` console script."""
    app()
