"""The ``hauler`` command line. Only this package prints (through rich)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# Which module registers each command. Importing only the one a run names keeps start-up short
# (the queue commands pull in the stores and rich's console, which `get` never needs).
COMMAND_MODULES = {
    "get": "get",
    **dict.fromkeys(
        ("add", "status", "jobs", "requeue", "clear", "explain", "pause", "resume", "stop"),
        "queue",
    ),
    "worker": "worker",
}
# Global options that take a value (see hauler.cli.app.main_options).
_VALUED_OPTIONS = ("--store", "--log-level", "--log-format")


def command_name(argv: Sequence[str]) -> str | None:
    """The command ``argv`` (without the program name) names, or None when there is none."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUED_OPTIONS:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def register_commands(argv: Sequence[str]) -> None:
    """Import the module of the command ``argv`` names; every module for help or a bad name."""
    module = COMMAND_MODULES.get(command_name(argv) or "")
    for name in [module] if module else sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"hauler.cli.{name}")


def main(prog_name: str = "hauler") -> None:
    """Entry point of the ``hauler`` console script."""
    register_commands(sys.argv[1:])
    from hauler.cli.app import app

    app(prog_name=prog_name)
