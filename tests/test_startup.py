"""Start-up: what `hauler get` imports before its first connection, each in a fresh interpreter.

Every test runs a small program in a new Python process (imports happen once per process), so
these check the real start-up path, not the test process's already-imported modules.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest


def run_python(program: str, **env: str) -> str:
    """Run ``program`` in a fresh interpreter; its stdout (the test fails on a non-zero exit)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# What `hauler get URL` does before its first request, in the same order.
GET_PATH = """
import sys
from hauler.cli import skip_pydantic_plugins
skip_pydantic_plugins()
import hauler.cli.get
from hauler.config import load_settings
from hauler.cli.joblist import collect_jobs
load_settings()
collect_jobs(["http://127.0.0.1/x"], None)
import hauler.pipeline
"""


def test_get_path_skips_pydantic_plugin_discovery() -> None:
    loaded = run_python(GET_PATH + "print('importlib.metadata' in sys.modules)")
    assert loaded == "False"


def test_get_path_builds_no_ca_store_in_aiohttp() -> None:
    """aiohttp's import-time contexts are built without loading the system CAs (~85 ms)."""
    program = GET_PATH + (
        "from aiohttp import connector\n"
        "print(connector._SSL_CONTEXT_VERIFIED.cert_store_stats()['x509_ca'],"
        " connector._SSL_CONTEXT_VERIFIED.verify_mode == connector.ssl.CERT_REQUIRED)"
    )
    assert run_python(program) == "0 True"


def test_verified_context_loads_trust_at_first_handshake_only() -> None:
    program = (
        "import ssl\n"
        "from hauler.net import verified_context\n"
        "ctx = verified_context()\n"
        "assert ctx is verified_context()\n"
        "assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname\n"
        "before = ctx.cert_store_stats()['x509_ca']\n"
        "ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname='example.org')\n"
        "print(before, ctx.cert_store_stats()['x509_ca'] > 0)"
    )
    assert run_python(program) == "0 True"


@pytest.mark.parametrize(
    ("setting", "is_stubbed"), [(None, True), ("1", True), ("some_plugin", False)]
)
def test_plugin_loader_stand_in_only_when_all_plugins_are_off(
    setting: str | None, is_stubbed: bool
) -> None:
    env = {} if setting is None else {"PYDANTIC_DISABLE_PLUGINS": setting}
    program = GET_PATH + (
        "import os\n"
        "loader = sys.modules['pydantic.plugin._loader']\n"
        "is_stubbed = loader.__doc__ == 'hauler: pydantic plugins are disabled'\n"
        "print(is_stubbed, list(loader.get_plugins()), os.environ['PYDANTIC_DISABLE_PLUGINS'])"
    )
    assert run_python(program, **env) == f"{is_stubbed} [] {setting or '__all__'}"


def test_stand_in_mirrors_pydantics_plugin_loader() -> None:
    """The stand-in replaces pydantic's loader: all pydantic takes from it must exist there."""
    package = Path(pydantic.__file__).parent
    wanted = set()
    for source in package.rglob("*.py"):
        for names in re.findall(r"from \S*_loader import ([\w, ]+)", source.read_text("utf-8")):
            wanted |= {name.strip() for name in names.split(",")}
    assert wanted == {"get_plugins"}


def test_collector_paused_for_start_up_only() -> None:
    """`hauler` pauses the garbage collector while it starts and resumes it (with the start-up
    objects frozen) before the command runs.
    """
    program = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 0))\n"
        "sys.argv = ['hauler', 'get', '--help']\n"
        "from hauler.cli import main\n"
        "main()\n"
    )
    assert run_python(program).splitlines()[-1] == "True True"


def test_resume_without_pause_changes_nothing() -> None:
    """Code that runs the typer app without ``main`` (tests, embedders) keeps its collector."""
    program = (
        "import gc\n"
        "from hauler.cli import resume_gc\n"
        "gc.disable()\n"
        "resume_gc()\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    assert run_python(program) == "False 0"


def test_no_toml_parser_without_a_config_file(tmp_path: Path) -> None:
    program = GET_PATH + "print('tomllib' in sys.modules)"
    assert run_python(program, HAULER_CONFIG=str(tmp_path / "absent.toml")) == "False"
