"""One frozen ``Settings`` tree, built once at the edge from env ``HAULER_*``, an optional
``hauler.toml`` (``$HAULER_CONFIG`` or ``./hauler.toml``) and CLI flags (highest priority).

Each component receives only its own part: the engine a ``TransferSettings``, the worker a
``WorkerSettings``. Nested fields are set from the environment with a double underscore:
``HAULER_TRANSFER__CONNECTIONS=16``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MIB = 1024 * 1024


def default_store_url() -> str:
    """``sqlite:////home/me/.local/share/hauler/state.db`` (the user's data directory)."""
    return "sqlite:///" + str(Path(user_data_dir("hauler")) / "state.db")


class TransferSettings(BaseModel):
    """The transfer engine's knobs (aria2c's names in comments where they match)."""

    model_config = ConfigDict(frozen=True)

    connections: int = Field(default=8, ge=1, le=1024)  # -x / --max-connection-per-server
    min_split_bytes: int = Field(default=1 * MIB, ge=16 * 1024)  # -k / --min-split-size
    block_bytes: int = Field(default=256 * 1024, ge=4096)  # read size per socket read
    control_flush_bytes: int = Field(default=4 * MIB, ge=64 * 1024)
    control_flush_s: float = 1.0
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 60.0
    lowest_speed_bps: int = Field(default=1024, ge=0)  # --lowest-speed-limit, per connection
    stall_window_s: float = 15.0
    segment_retries: int = Field(default=8, ge=0)  # per segment, before the file fails
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    max_retry_after_s: float = 300.0
    limit_rate_bps: int | None = None  # overall (all files); per file is on the request
    dns_ttl_s: int = 300
    pool_per_host: int = 0  # 0: no limit besides the connections each file asks for
    user_agent: str = "hauler/0.1"
    proxy: str | None = None
    allow_private: bool = True  # `get` on a laptop may fetch from localhost; the API may not
    allowed_schemes: tuple[str, ...] = ("http", "https")
    max_size_bytes: int | None = None


class WorkerSettings(BaseModel):
    """A worker process's knobs."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    node: str | None = None
    output_dir: Path = Path("downloads")
    concurrency: int = Field(default=16, ge=1, le=100_000)
    mode: str = "forever"
    lease_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=15.0, gt=0)
    grace_s: float = Field(default=30.0, ge=0)
    poll_s: float = Field(default=1.0, gt=0)
    claim_batch: int = Field(default=32, ge=1)
    affinity_s: float = Field(default=30.0, ge=0)
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0


class Settings(BaseSettings):
    """Everything hauler can be told; see the README's Configuration section."""

    model_config = SettingsConfigDict(
        env_prefix="HAULER_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    store: str = Field(default_factory=default_store_url)
    log_level: str = "WARNING"
    log_format: str = "text"
    transfer: TransferSettings = TransferSettings()
    worker: WorkerSettings = WorkerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("HAULER_CONFIG", "hauler.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; ``overrides`` (from CLI flags) win over env and file."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
