"""Which command a command line names (only that command's module is imported at start-up)."""

from __future__ import annotations

import pytest

from hauler.cli import COMMAND_MODULES, command_name, hoist_global_options


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "http://x/"], "get"),
        (["--store", "sqlite:///get.db", "status"], "status"),
        (["--store=redis://h/0", "--log-level", "DEBUG", "worker", "--help"], "worker"),
        (["--log-format", "json", "--help"], None),
        ([], None),
        (["--store"], None),
    ],
)
def test_command_name_skips_global_options_and_their_values(
    argv: list[str], expected: str | None
) -> None:
    assert command_name(argv) == expected


def test_every_registered_command_is_mapped_to_its_module() -> None:
    import importlib

    from hauler.cli.app import app

    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"hauler.cli.{module}")
    registered = {info.name for info in app.registered_commands}
    registered |= {group.name for group in app.registered_groups}  # proxy …, account …
    assert registered == set(COMMAND_MODULES)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "--log-level", "INFO", "http://x/"], ["--log-level", "INFO", "get", "http://x/"]),
        (["status", "--store=redis://h/0", "--json"], ["--store=redis://h/0", "status", "--json"]),
        (
            ["--log-format", "json", "add", "-i", "f", "--store", "s"],
            ["--log-format", "json", "--store", "s", "add", "-i", "f"],
        ),
        (["add", "--", "--store", "x"], ["add", "--", "--store", "x"]),
        (["status", "--store"], ["status", "--store"]),
        (["--help"], ["--help"]),
    ],
)
def test_global_options_after_the_command_move_before_it(
    argv: list[str], expected: list[str]
) -> None:
    assert hoist_global_options(argv) == expected
