"""Start-up: what `hauler get` imports before its first connection, each in a fresh interpreter.

Every test runs a small program in a new Python process (imports happen once per process), so
these check the real start-up path, not the test process's already-imported modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
import hauler.pipeline.kinds
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


# Every way pydantic builds a validator (each asks the plugin loader for plugins), then a failed
# validation: under the stand-in each must work as with pydantic's own loader.
PYDANTIC_USES = """
import sys
import pydantic
import pydantic.dataclasses
from hauler.config import load_settings

class Model(pydantic.BaseModel):
    size: int

@pydantic.dataclasses.dataclass
class Data:
    size: int

@pydantic.validate_call
def call(size: int) -> int:
    return size

built = [Model(size="1").size, int(load_settings() is not None), Data(size="1").size]
built += [call("1"), pydantic.TypeAdapter(list[int]).validate_python(["1"])]
try:
    Model(size="x")
except pydantic.ValidationError as exc:
    built.append(exc.error_count())
print(built, 'importlib.metadata' in sys.modules)
"""


def test_pydantic_works_with_the_stand_in_and_discovers_no_plugins() -> None:
    """The behaviour the stand-in must keep, whatever pydantic takes from its loader: models,
    hauler's settings, dataclasses, validate_call and TypeAdapter build and validate, and the
    entry point scan (importlib.metadata, ~15 ms of start-up) never runs."""
    program = "from hauler.cli import skip_pydantic_plugins\nskip_pydantic_plugins()\n"
    assert run_python(program + PYDANTIC_USES) == "[1, 1, 1, 1, [1], 1] False"


# Runs `hauler ARGV` through the console script's entry point; at exit prints whether the
# collector is on, whether start-up objects were frozen, and whether aiohttp was imported.
MAIN = """
import atexit, gc, sys
atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 0, 'aiohttp' in sys.modules))
sys.argv = ['hauler', *sys.argv[1:]]
from hauler.cli import main
main()
"""


def run_main(*argv: str, prelude: str = "") -> str:
    """The last line ``MAIN`` prints for ``hauler ARGV``, whatever the exit status."""
    done = subprocess.run(
        [sys.executable, "-c", prelude + MAIN, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip().splitlines()[-1]


def test_get_loads_the_engine_during_start_up_with_the_collector_paused() -> None:
    """A usage error stops `get` before any download: the engine was loaded in start-up, and the
    collector is back on (with start-up's objects frozen).
    """
    assert run_main("get") == "True True True"


def test_get_help_loads_no_engine() -> None:
    assert run_main("get", "--help") == "True True False"


def test_collector_left_off_when_it_was_off() -> None:
    assert run_main("get", "--help", prelude="import gc\ngc.disable()\n") == "False False False"


def test_no_toml_parser_without_a_config_file(tmp_path: Path) -> None:
    program = GET_PATH + "print('tomllib' in sys.modules)"
    assert run_python(program, HAULER_CONFIG=os.devnull) == "False"
