"""One frozen ``Settings`` tree, built once at the edge from env ``HAULER_*``, an optional
``hauler.toml`` (``$HAULER_CONFIG`` or ``./hauler.toml``) and CLI flags (highest priority).

Each component receives only its own part: the engine a ``TransferSettings``, the worker a
``WorkerSettings``. Nested fields are set from the environment with a double underscore:
``HAULER_TRANSFER__CONNECTIONS=16``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field

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
    # A file fails (Stalled) after this many stall reconnects spent below lowest_speed_bps on
    # average (a trickling server would hold a lane forever); 0: never give up.
    max_stall_reconnects: int = Field(default=5, ge=0)
    # Per segment; the count restarts whenever the segment makes progress, so only a dead or
    # refusing origin exhausts it: 5 tries with a 10 s cap fail a dead host in ~8-16 s (aria2c: 5).
    segment_retries: int = Field(default=5, ge=0)
    retry_base_s: float = 0.5
    retry_cap_s: float = 10.0
    max_retry_after_s: float = 300.0
    limit_rate_bps: int | None = None  # overall (all files); per file is on the request
    dns_ttl_s: int = 300
    pool_per_host: int = 0  # 0: no limit besides the connections each file asks for
    user_agent: str = "hauler/0.1"
    proxy: str | None = None
    allow_private: bool = True  # `get` on a laptop may fetch from localhost; the API may not
    allowed_schemes: tuple[str, ...] = ("http", "https")
    max_size_bytes: int | None = None
    # fsync each file before its atomic rename: a power loss then never leaves a truncated file
    # under a final name. None: the command decides (off for `get`, like aria2c and curl; on for
    # the worker, whose store records the file as done).
    fsync_files: bool | None = None


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
    # After a disk-full failure: take no job until this much is free, checking this often.
    min_free_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    disk_check_s: float = Field(default=30.0, gt=0)


class Settings(BaseModel):
    """Everything hauler can be told; see the README's Configuration section."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    store: str = Field(default_factory=default_store_url)
    log_level: str = "WARNING"
    log_format: str = "text"
    transfer: TransferSettings = TransferSettings()
    worker: WorkerSettings = WorkerSettings()


ENV_PREFIX = "HAULER_"


def _from_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import tomllib  # only when there is a file: ~3 ms of start-up otherwise

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the configuration file {path}: {exc}") from exc


def _env_value(text: str) -> Any:
    # Lists and tables are written as JSON (HAULER_TRANSFER__ALLOWED_SCHEMES='["http"]').
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "HAULER_CONFIG":
            continue
        *parents, leaf = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _env_value(value)
    return tree


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings: ``hauler.toml`` < env ``HAULER_*`` < ``overrides`` (CLI flags).

    Overrides that are None (flags not given) are ignored. Raises ``ValueError`` (pydantic's
    ``ValidationError`` is one) naming the bad setting.
    """
    env = os.environ if environ is None else environ
    layered = _from_toml(Path(env.get("HAULER_CONFIG", "hauler.toml")))
    layered = _merge(layered, _from_env(env))
    layered = _merge(layered, {k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(layered)
