"""The ``hauler`` command line. Only this package prints (through rich)."""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types
from collections.abc import Iterable, Sequence

# Which module registers each command. Importing only the one a run names keeps start-up short
# (the queue commands pull in the stores and rich's console, which `get` never needs).
COMMAND_MODULES = {
    "get": "get",
    **dict.fromkeys(
        ("add", "status", "jobs", "requeue", "clear", "explain", "pause", "resume", "stop"),
        "queue",
    ),
    "worker": "worker",
    "record": "record",
    **dict.fromkeys(("proxy", "account", "pools"), "pools"),
    "host": "hosts",
}
# What a command imports once it runs (the engine, aiohttp, asyncio): loaded during start-up,
# with the collector paused (see ``main``). Its ``--help`` loads none of them.
COMMAND_PRELOADS = {
    "get": (
        "hauler.cli.joblist",
        "hauler.local.batch",
        "hauler.cli.report",
        "hauler.pipeline.kinds",
    ),
    "record": ("hauler.pipeline.kinds", "hauler.local.infocache"),
}
# Global options that take a value (see hauler.cli.app.main_options).
_VALUED_OPTIONS = ("--store", "--log-level", "--log-format")


def _command_index(argv: Sequence[str]) -> int | None:
    """Where in ``argv`` the command name is, or None when there is none."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in _VALUED_OPTIONS:
            index += 1
        elif not arg.startswith("-"):
            return index
        index += 1
    return None


def command_name(argv: Sequence[str]) -> str | None:
    """The command ``argv`` (without the program name) names, or None when there is none."""
    index = _command_index(argv)
    return None if index is None else argv[index]


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """``argv`` with the global options given after the command name moved before it, so that
    ``hauler get --log-level INFO URL`` and ``hauler status --store URL`` work (as in aria2c,
    curl and git, where an option's place does not matter). Nothing after ``--`` moves."""
    index = _command_index(argv)
    if index is None:
        return list(argv)
    before, command, rest = list(argv[:index]), argv[index], list(argv[index + 1 :])
    kept: list[str] = []
    position = 0
    while position < len(rest):
        arg = rest[position]
        if arg == "--":
            kept += rest[position:]
            break
        if arg in _VALUED_OPTIONS and position + 1 < len(rest):
            before += rest[position : position + 2]
            position += 2
            continue
        if "=" in arg and arg.partition("=")[0] in _VALUED_OPTIONS:
            before.append(arg)
        else:
            kept.append(arg)
        position += 1
    return [*before, command, *kept]


def register_commands(argv: Sequence[str]) -> None:
    """Import the module of the command ``argv`` names; every module for help or a bad name."""
    module = COMMAND_MODULES.get(command_name(argv) or "")
    for name in [module] if module else sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"hauler.cli.{name}")


# pydantic's own test for "every plugin disabled" (pydantic/plugin/_loader.py).
_NO_PYDANTIC_PLUGINS = ("__all__", "1", "true")
_PYDANTIC_PLUGIN_LOADER = "pydantic.plugin._loader"


def skip_pydantic_plugins() -> None:
    """hauler uses no pydantic plugin: unless ``PYDANTIC_DISABLE_PLUGINS`` says otherwise, turn
    them off and keep pydantic's plugin loader from importing ``importlib.metadata`` and scanning
    every installed package's entry points when the first model is built (~25 ms of start-up).
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in _NO_PYDANTIC_PLUGINS:
        sys.modules.setdefault(_PYDANTIC_PLUGIN_LOADER, _no_plugins_loader())


def _no_plugins_loader() -> types.ModuleType:
    """A stand-in for pydantic's plugin loader whose ``get_plugins`` finds none, as the real
    one does when ``PYDANTIC_DISABLE_PLUGINS`` disables them all.
    """
    loader = types.ModuleType(_PYDANTIC_PLUGIN_LOADER, "hauler: pydantic plugins are disabled")

    def get_plugins() -> Iterable[object]:
        return ()

    vars(loader)["get_plugins"] = get_plugins
    return loader


def preload(argv: Sequence[str]) -> None:
    """Import the modules the command ``argv`` names goes on to use (not for ``--help``)."""
    if "--help" in argv or "-h" in argv:
        return
    for module in COMMAND_PRELOADS.get(command_name(argv) or "", ()):
        importlib.import_module(module)


def main(prog_name: str = "hauler") -> None:
    """Entry point of the ``hauler`` console script.

    Start-up (the imports) runs with the cyclic garbage collector paused: it allocates ~200,000
    objects that live as long as the process, which the collector would scan again and again for
    nothing (~20 ms before ``get``'s first connection). They are then frozen out of every later
    collection, and the command runs with the collector on.
    """
    sys.argv[1:] = hoist_global_options(sys.argv[1:])
    is_collecting = gc.isenabled()
    gc.disable()
    try:
        skip_pydantic_plugins()
        register_commands(sys.argv[1:])
        preload(sys.argv[1:])
        from hauler.cli.app import app
    finally:
        if is_collecting:
            gc.freeze()
            gc.enable()
    app(prog_name=prog_name)
