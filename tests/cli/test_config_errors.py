"""Configuration and usage mistakes through the real ``hauler`` command: one line on stderr
naming the key and what is accepted, exit 2, never a traceback and never silence."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.hauler_process import HAULER, hauler_env


def run(
    tmp_path: Path, *args: str, drop: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """``hauler ARGS`` in ``tmp_path`` with a store there, ``env`` on top, ``drop`` unset."""
    environ = hauler_env(f"sqlite:///{tmp_path / 'state.db'}", **env)
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    for name in drop:
        environ.pop(name, None)
    return subprocess.run(
        [HAULER, *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hauler: "), done.stderr
    for needle in needles:
        assert needle in lines[0]


def config_file(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "hauler.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ("[transfer]\nconection = 2\n", ["'transfer.conection'", "'transfer.connections'"]),
        ("conection = 2\n", ["'conection'", "did you mean 'transfer.connections'"]),
        ("[transfer]\nconnections = 'many'\n", ["'many'", "transfer.connections", "integer"]),
        ("[worker\n", ["cannot read the configuration file", "line 1"]),
        (b"store = '\xff'\n", ["cannot read the configuration file"]),
        ("log_level = 'LOUD'\n", ["'LOUD'", "DEBUG, INFO, WARNING, ERROR, CRITICAL"]),
    ],
)
def test_config_file_mistakes(tmp_path: Path, toml: str | bytes, needles: list[str]) -> None:
    done = run(tmp_path, "status", HAULER_CONFIG=config_file(tmp_path, toml))
    assert_usage_error(done, *needles)


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"HAULER_TRANSFER__CONECTIONS": "2"}, ["HAULER_TRANSFER__CONECTIONS", "CONNECTIONS?"]),
        ({"HAULER_STOR": "x"}, ["HAULER_STOR ", "HAULER_STORE?", "HAULER_CONFIG"]),
        ({"HAULER_WORKER__CONCURRENCY": "lots"}, ["'lots'", "HAULER_WORKER__CONCURRENCY"]),
        ({"HAULER_WORKER__MODE": "sometimes"}, ["'forever', 'drain' or 'once'"]),
        ({"HAULER_CONFIG": "/nonexistent/hauler.toml"}, ["/nonexistent/hauler.toml", "not exist"]),
    ],
)
def test_environment_mistakes(tmp_path: Path, env: dict[str, str], needles: list[str]) -> None:
    assert_usage_error(run(tmp_path, "status", **env), *needles)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--log-level", "LOUD", "status"], ["--log-level", "'LOUD'", "DEBUG, INFO"]),
        (["status", "--log-level", "LOUD"], ["--log-level", "'LOUD'"]),
        (["--log-format", "xml", "status"], ["--log-format", "'text' or 'json'"]),
        (["requeue", "--reason", "bogus"], ["'bogus'", "not_found", "content_mismatch"]),
        (["clear", "--reason", "NotFound"], ["'NotFound'", "not_found"]),
        (
            ["status", "--store", "sqlite:////nonexistent/dir/s.db"],
            ["/nonexistent/dir", "sqlite:////"],
        ),
        (["worker", "--store", "sqlite:////nonexistent/dir/s.db"], ["/nonexistent/dir"]),
        (["worker", "--store", "ftp://h/x"], ["unknown store URL"]),
    ],
)
def test_option_mistakes(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    assert_usage_error(run(tmp_path, *args), *needles)
    assert not Path("/nonexistent").exists()


def test_user_config_file_then_project_file_then_flags(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "hauler" / "hauler.toml"
    user.parent.mkdir(parents=True)
    user.write_text(f"store = 'sqlite:///{tmp_path / 'user.db'}'\nlog_level = 'INFO'\n")
    done = run(tmp_path, "add", "http://127.0.0.1:9/a", drop=("HAULER_STORE",))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "user.db").exists()  # the user's file named the store
    (tmp_path / "hauler.toml").write_text(f"store = 'sqlite:///{tmp_path / 'project.db'}'\n")
    env = {"HAULER_CONFIG": str(tmp_path / "hauler.toml")}
    done = run(tmp_path, "add", "http://127.0.0.1:9/a", drop=("HAULER_STORE",), **env)
    assert done.returncode == 0 and (tmp_path / "project.db").exists(), done.stderr
    flag = f"sqlite:///{tmp_path / 'flag.db'}"
    done = run(tmp_path, "status", "--store", flag, drop=("HAULER_STORE",), **env)
    assert done.returncode == 0 and (tmp_path / "flag.db").exists(), done.stderr


def test_global_options_after_the_command_version_and_short_help(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    done = run(tmp_path, "add", "--store", f"sqlite:///{other}", "http://127.0.0.1:9/a")
    assert done.returncode == 0 and other.exists(), done.stderr
    status = run(tmp_path, "status", f"--store=sqlite:///{other}", "--json")
    assert '"queued": 1' in status.stdout
    assert run(tmp_path, "-V").stdout.strip() == "hauler 0.1.0"
    assert "Usage: hauler add" in run(tmp_path, "add", "-h").stdout
    assert "sqlite:////abs/path" in run(tmp_path, "-h").stdout
    requeue_help = run(tmp_path, "requeue", "-h").stdout
    assert "not_found" in requeue_help and "content_mismatch" in requeue_help
