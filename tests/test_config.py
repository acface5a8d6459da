"""Settings layering: defaults < hauler.toml < HAULER_* environment < command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from hauler.config import load_settings


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


def test_missing_toml_means_defaults(tmp_path: Path) -> None:
    settings = load_settings({"HAULER_CONFIG": str(tmp_path / "absent.toml")})
    assert settings.transfer.connections == 8
    assert settings.store.startswith("sqlite:///")
