"""Settings layering: defaults < hauler.toml < HAULER_* environment < command-line overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hauler.config import ConfigError, load_settings


def test_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "hauler.toml"
    config.write_text(
        'store = "redis://127.0.0.1:6379/0"\nlog_level = "INFO"\n'
        "[transfer]\nconnections = 16\nmin_split_bytes = 2097152\n",
        encoding="utf-8",
    )
    env = {"HAULER_CONFIG": str(config), "HAULER_TRANSFER__CONNECTIONS": "4"}
    settings = load_settings(env, log_level="DEBUG", store=None)
    assert settings.store == "redis://127.0.0.1:6379/0"
    assert settings.log_level == "DEBUG"
    assert settings.transfer.connections == 4
    assert settings.transfer.min_split_bytes == 2 * 1024 * 1024


def test_unreadable_toml_is_named(tmp_path: Path) -> None:
    config = tmp_path / "hauler.toml"
    config.write_text("[transfer\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot read the configuration file .*hauler\.toml"):
        load_settings({"HAULER_CONFIG": str(config)})


def test_missing_hauler_config_is_an_error_and_devnull_means_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"HAULER_CONFIG names .*absent\.toml, which does not"):
        load_settings({"HAULER_CONFIG": str(tmp_path / "absent.toml")})
    settings = load_settings({"HAULER_CONFIG": os.devnull})
    assert settings.transfer.connections == 8
    assert settings.store.startswith("sqlite:///")


def test_user_file_is_below_the_project_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user = tmp_path / "xdg" / "hauler" / "hauler.toml"
    user.parent.mkdir(parents=True)
    user.write_text('log_level = "INFO"\n[transfer]\nconnections = 3\nuser_agent = "u"\n')
    project = tmp_path / "project.toml"
    project.write_text("[transfer]\nconnections = 5\n")
    assert load_settings({"HAULER_CONFIG": os.devnull}).transfer.connections == 3
    settings = load_settings({"HAULER_CONFIG": str(project), "HAULER_LOG_LEVEL": "error"})
    assert (settings.transfer.connections, settings.transfer.user_agent) == (5, "u")
    assert settings.log_level == "ERROR"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hauler.toml").write_text("[transfer]\nconnections = 6\n")
    assert load_settings({}).transfer.connections == 6


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("conection = 2\n", {}, r"unknown setting 'conection' in .*\(did you mean"),
        ("[transfer]\nconection = 2\n", {}, r"'transfer\.conection'.*'transfer\.connections'"),
        ("", {"HAULER_TRANSFER__CONECTIONS": "2"}, r"HAULER_TRANSFER__CONNECTIONS\?"),
        ("", {"HAULER_LOGLEVEL": "INFO"}, r"did you mean HAULER_LOG_LEVEL\?.*HAULER_CONFIG"),
        ("[transfer]\nconnections = 0\n", {}, r"bad value 0 for transfer\.connections \(from /"),
        ("", {"HAULER_WORKER__CONCURRENCY": "x"}, r"'x' .*HAULER_WORKER__CONCURRENCY"),
        ("", {"HAULER_LOG_LEVEL": "LOUD"}, r"accepted: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("", {"HAULER_LOG_FORMAT": "xml"}, r"'text' or 'json'"),
        ("[transfer\n", {}, r"cannot read the configuration file"),
    ],
)
def test_mistakes_name_the_key_and_what_is_accepted(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "hauler.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings({"HAULER_CONFIG": str(config), **env})
    assert "\n" not in str(caught.value)


def test_a_bad_url_value_is_shown_without_its_password(tmp_path: Path) -> None:
    config = tmp_path / "hauler.toml"
    config.write_text('[pools]\nprobe_url = "ftp://user:s3cret@probe.example/?token=t0k"\n')
    with pytest.raises(ConfigError, match=r"bad value 'ftp://user:\*\*\*@probe") as caught:
        load_settings({"HAULER_CONFIG": str(config)})
    assert "s3cret" not in str(caught.value) and "t0k" not in str(caught.value)
