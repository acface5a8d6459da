"""One frozen ``Settings`` tree, built once at the edge. Lowest to highest priority: the
defaults, the user's file (``~/.config/hauler/hauler.toml``, platformdirs' user config
directory), the project's file (``$HAULER_CONFIG``, else ``./hauler.toml``), the environment
``HAULER_*``, the command-line flags.

Each component receives only its own part: the engine a ``TransferSettings``, the worker a
``WorkerSettings``. Nested fields are set from the environment with a double underscore:
``HAULER_TRANSFER__CONNECTIONS=16``.

Every mistake is a ``ConfigError`` of one line naming the key, where it came from and what is
accepted: an unknown key (with the nearest valid name), a bad value, a file that does not parse,
a ``$HAULER_CONFIG`` that does not exist.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from platformdirs import user_config_dir, user_data_dir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hauler.redact import redact_url

MIB = 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CONFIG_FILE = "hauler.toml"


class ConfigError(ValueError):
    """A setting hauler cannot use; the message (one line) names it and what is accepted."""


def default_store_url() -> str:
    """``sqlite:////home/me/.local/share/hauler/state.db`` (the user's data directory)."""
    return "sqlite:///" + str(Path(user_data_dir("hauler")) / "state.db")


class TransferSettings(BaseModel):
    """The transfer engine's knobs (aria2c's names in comments where they match)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    node: str | None = None
    output_dir: Path = Path("downloads")
    concurrency: int = Field(default=16, ge=1, le=100_000)
    # Recordings (hours long) run beside the download lanes, up to this many at once; a
    # recording claimed beyond them takes a download lane.
    live_concurrency: int = Field(default=32, ge=0, le=10_000)
    mode: Literal["forever", "drain", "once"] = "forever"
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


class PoolSettings(BaseModel):
    """How the store's proxy and account pools are used (``[pools]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True  # false (--no-pools): the pools are ignored even when they hold any
    strategy: Literal["round_robin", "weighted", "least_connections", "fastest"] = (
        "least_connections"
    )
    max_in_use: int | None = Field(default=None, ge=1)  # jobs sharing one proxy/account at once
    proxy_distinct_accounts: int = Field(default=3, ge=1)
    proxy_window_s: float = Field(default=600.0, gt=0)
    proxy_fault_streak: int = Field(default=3, ge=1)
    account_distinct_proxies: int = Field(default=2, ge=1)
    account_rest_uses: int = Field(default=50, ge=1)
    account_rest_after_s: float = Field(default=1800.0, gt=0)
    rest_s: float = Field(default=900.0, ge=0)
    ban_base_s: float = Field(default=3600.0, gt=0)
    ban_cap_s: float = Field(default=86400.0, gt=0)
    # A bannable failure (a bot wall, a proxy's own failure): try again at once with other
    # resources (retry_other), fail the attempt as usual (fail), or stop the worker's lane that
    # met it (stop_lane: the lane claims nothing more, as Airflow farms stop a failing lane).
    on_bannable: Literal["retry_other", "fail", "stop_lane"] = "retry_other"
    # A banned proxy whose ban is about to end is fetched this URL through first: it comes back
    # only if that answers (2xx/3xx), else its ban starts again (doubled). None: no probe.
    probe_url: str | None = None
    probe_every_s: float = Field(default=30.0, gt=0)
    probe_timeout_s: float = Field(default=10.0, gt=0)
    # How often each worker gives back what dead workers held (pools.holds.HoldSweeper).
    hold_sweep_s: float = Field(default=30.0, gt=0)

    @field_validator("probe_url")
    @classmethod
    def _check_probe_url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError("accepted: an http:// or https:// URL with a host")
        return value


def _is_http_url(url: str) -> bool:
    """True for an ``http://`` or ``https://`` URL with a host (and a valid port, if any)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


class HostSettings(BaseModel):
    """How requests keep to the fleet-wide per-host budgets (``[hosts]``; the limits themselves
    are in the store: ``hauler host limit``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True  # false: no request asks the store (limits and cooldowns ignored)
    # How often a worker asks whether limits or cooldowns changed (a cooldown on a host without
    # a limit reaches the other workers within this; a limited host is checked every request).
    refresh_s: float = Field(default=0.5, gt=0)
    # A connection's slot expires unless renewed (a third of this): a killed worker's slots
    # free by themselves.
    slot_ttl_s: float = Field(default=60.0, ge=3)
    # The longest cooldown a Retry-After may ask for.
    max_cooldown_s: float = Field(default=3600.0, gt=0)
    # A request that would wait longer than this (a long cooldown) does not hold its lane: the
    # job is retried when the wait is over.
    max_wait_s: float = Field(default=30.0, gt=0)


class Settings(BaseModel):
    """Everything hauler can be told; see the README's Configuration section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(default_factory=default_store_url)
    log_level: str = "WARNING"
    log_format: Literal["text", "json"] = "text"
    transfer: TransferSettings = TransferSettings()
    worker: WorkerSettings = WorkerSettings()
    pools: PoolSettings = PoolSettings()
    hosts: HostSettings = HostSettings()

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError("accepted: " + ", ".join(LOG_LEVELS))
        return level


ENV_PREFIX = "HAULER_"
# Environment variables that are not settings of the tree but are hauler's own.
ENV_NOT_SETTINGS = ("HAULER_CONFIG",)
_FROM_FLAGS = "the command line"


def user_config_file() -> Path:
    """``~/.config/hauler/hauler.toml`` (``$XDG_CONFIG_HOME``; platformdirs' choice elsewhere)."""
    return Path(user_config_dir("hauler")) / CONFIG_FILE


def _from_toml(path: Path, is_required: bool) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if is_required:
            raise ConfigError(
                f"HAULER_CONFIG names {path}, which does not exist "
                f"(unset it to use ./{CONFIG_FILE}, or set it to {os.devnull} for no file)"
            ) from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    if not data.strip():
        return {}  # /dev/null or an empty file: no need for the TOML parser (~3 ms)
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None


def _env_value(text: str) -> Any:
    # Lists and tables are written as JSON (HAULER_TRANSFER__ALLOWED_SCHEMES='["http"]').
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def env_name(path: tuple[str, ...]) -> str:
    """The environment variable of a setting: ``("transfer", "connections")`` →
    ``HAULER_TRANSFER__CONNECTIONS``."""
    return ENV_PREFIX + "__".join(path).upper()


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        *parents, leaf = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {env_name((part,))} is not a group of settings")
            node = child
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


def _section(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    """The model of a nested group of settings (``transfer``), None for a plain value."""
    annotation = model.model_fields[key].annotation
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _check_keys(
    tree: Mapping[str, Any],
    source: str,
    model: type[BaseModel] = Settings,
    at: tuple[str, ...] = (),
) -> None:
    """Refuse a key that is no setting, naming it, the nearest valid one and the valid ones."""
    for key, value in tree.items():
        path = (*at, str(key))
        if key not in model.model_fields:
            raise ConfigError(_unknown(path, source, model))
        section = _section(model, key)
        if section is not None and isinstance(value, Mapping):
            _check_keys(value, source, section, path)


def _leaf_paths(model: type[BaseModel], at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name in model.model_fields:
        section = _section(model, name)
        paths += _leaf_paths(section, (*at, name)) if section else [(*at, name)]
    return paths


def _nearest(path: tuple[str, ...], model: type[BaseModel]) -> tuple[str, ...] | None:
    """The valid setting nearest to ``path``: a sibling first, else one of any group
    (``connections`` at the top is ``transfer.connections``)."""
    import difflib  # only on a mistake: keeps start-up short

    near = difflib.get_close_matches(path[-1], list(model.model_fields), n=1, cutoff=0.6)
    if near:
        return (*path[:-1], near[0])
    leaves = {leaf[-1]: leaf for leaf in _leaf_paths(Settings)}
    near = difflib.get_close_matches(path[-1], list(leaves), n=1, cutoff=0.6)
    return leaves[near[0]] if near else None


def _unknown(path: tuple[str, ...], source: str, model: type[BaseModel]) -> str:
    names = sorted(model.model_fields)
    near = _nearest(path, model)
    if source == "env":
        valid = [
            env_name((*path[:-1], name)) + ("__*" if _section(model, name) else "")
            for name in names
        ]
        if not path[:-1]:
            valid += list(ENV_NOT_SETTINGS)
        hint = f" (did you mean {env_name(near)}?)" if near else ""
        return f"unknown environment variable {env_name(path)}{hint}; valid: {', '.join(valid)}"
    hint = f" (did you mean {'.'.join(near)!r}?)" if near else ""
    return f"unknown setting {'.'.join(path)!r} in {source}{hint}; valid: {', '.join(names)}"


def _sources(tree: Mapping[str, Any], source: str, at: tuple[str, ...] = ()) -> dict[str, str]:
    """Where each leaf of ``tree`` came from, by dotted key."""
    found: dict[str, str] = {}
    for key, value in tree.items():
        path = (*at, str(key))
        if isinstance(value, Mapping):
            found |= _sources(value, source, path)
        if source == "env":
            found[".".join(path)] = env_name(path)
        elif source == _FROM_FLAGS:
            found[".".join(path)] = "--" + "-".join(path).replace("_", "-")
        else:
            found[".".join(path)] = source
    return found


def _bad_value(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    origin = sources.get(key)
    where = f" (from {origin})" if origin else ""
    cause = first.get("ctx", {}).get("error")
    reason = str(cause) if isinstance(cause, ValueError) else first["msg"]
    value = first.get("input")
    if isinstance(value, str) and "://" in value:
        value = redact_url(value)  # a URL's password or token is no part of the error
    shown = f" {value!r}" if isinstance(value, str | int | float | bool) else ""
    return ConfigError(f"bad value{shown} for {key}{where}: {reason}")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults < the user's ``hauler.toml`` < ``$HAULER_CONFIG`` or
    ``./hauler.toml`` < env ``HAULER_*`` < ``overrides`` (CLI flags; None means not given).

    Raises ``ConfigError`` (a ``ValueError``) with a one-line message naming the setting.
    """
    env = os.environ if environ is None else environ
    project = env.get("HAULER_CONFIG")
    files = [(user_config_file(), False)]
    files.append((Path(project), True) if project else (Path(CONFIG_FILE), False))
    layered: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path, is_required in files:
        layer = _from_toml(path, is_required)
        _check_keys(layer, str(path))
        layered, sources = _merge(layered, layer), sources | _sources(layer, str(path))
    layer = _from_env(env)
    _check_keys(layer, "env")
    layered, sources = _merge(layered, layer), sources | _sources(layer, "env")
    layer = {k: v for k, v in overrides.items() if v is not None}
    layered, sources = _merge(layered, layer), sources | _sources(layer, _FROM_FLAGS)
    try:
        return Settings.model_validate(layered)
    except ValidationError as exc:
        raise _bad_value(exc, sources) from None
