"""How both backends turn stored fields into models and back.

A job is stored as flat fields (an SQLite row, a Redis hash). Redis keeps every value as a
string and writes ``""`` for "none", so the readers here accept both ``None`` and ``""``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from hauler.hosts import HostBudget, HostLimit
from hauler.models import Job, JobError, JobSpec, JobState, WorkerInfo
from hauler.resources import (
    Counters,
    Resource,
    ResourceSpec,
    ResourceState,
    Use,
    spec_from_record,
    spec_record,
)

logger = logging.getLogger(__name__)


def _opt_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _error(fields: Mapping[str, Any]) -> JobError | None:
    error_class = _opt_str(fields.get("error_class"))
    if error_class is None:
        return None
    return JobError(
        error_class=error_class,
        message=str(fields.get("error_message") or ""),
        at=float(fields.get("error_at") or 0.0),
    )


def _result(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    loaded = json.loads(value)
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def spec_to_json(spec: JobSpec) -> str:
    """The spec as stored: only the fields that differ from their defaults.

    A plain URL is ``{"url": "..."}`` (45 bytes) instead of every field spelled out (~180):
    millions of jobs are millions of copies. In Redis it also keeps a job's hash within
    ``hash-max-listpack-value`` more often. ``JobSpec`` fills the defaults back in when read;
    specs stored whole by earlier versions read the same. The job's own priority and
    max_attempts are stored as fields of their own and win over the spec's.
    """
    return spec.model_dump_json(exclude_defaults=True)


def job_from_fields(fields: Mapping[str, Any]) -> Job:
    """Build a ``Job`` from a stored record (column or hash-field names as in schema.sql)."""
    return Job(
        id=str(fields["id"]),
        key=str(fields["key"]),
        spec=JobSpec.model_validate_json(fields["spec"]),
        state=JobState(fields["state"]),
        priority=int(fields["priority"]),
        attempts=int(fields["attempts"]),
        max_attempts=int(fields["max_attempts"]),
        ready_at=float(fields["ready_at"]),
        created_at=float(fields["created_at"]),
        updated_at=float(fields["updated_at"]),
        token=int(fields.get("token") or 0),
        lease_until=_opt_float(fields.get("lease_until")),
        worker=_opt_str(fields.get("worker")),
        node=_opt_str(fields.get("node")),
        error=_error(fields),
        result=_result(fields.get("result")),
    )


def result_to_json(result: Mapping[str, Any]) -> str:
    """A completion's result as stored (compact JSON; non-JSON values become strings)."""
    return json.dumps(dict(result), separators=(",", ":"), default=str)


def worker_to_json(info: WorkerInfo) -> str:
    """A worker heartbeat as stored."""
    return json.dumps(dataclasses.asdict(info), separators=(",", ":"))


def worker_from_json(text: str) -> WorkerInfo:
    """The inverse of ``worker_to_json``."""
    data = json.loads(text)
    data["current_jobs"] = tuple(data.get("current_jobs") or ())
    return WorkerInfo(**data)


# zlib's level for info dicts: see info_to_blob.
_INFO_LEVEL = 6


def info_to_blob(info: Mapping[str, Any]) -> bytes:
    """An info dict as stored: compact JSON (ASCII: a lone surrogate in a title survives),
    zlib-compressed. Raises ``ValueError`` when ``info`` is not JSON.

    Level 6 (zlib's default), measured on a 312 KB YouTube-like info: 13 % smaller than
    level 1 for ~1 ms more, within 2 % of level 9 and faster (see ``InfoCache``)."""
    try:
        text = json.dumps(info, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the info dict is not JSON: {exc}") from exc
    return zlib.compress(text.encode("ascii"), _INFO_LEVEL)


def info_from_blob(blob: bytes) -> dict[str, Any] | None:
    """The inverse of ``info_to_blob``. A blob it cannot read (damaged, or written by another
    version's format) is a cache miss, logged (without its key: a URL may hold a password):
    the caller extracts again and overwrites it."""
    try:
        loaded = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        logger.warning("a cached media info is unreadable (%s); ignoring it", exc)
        return None
    if not isinstance(loaded, dict):
        logger.warning("a cached media info is not a JSON object; ignoring it")
        return None
    return loaded


def info_keys(keys: Sequence[str], ttl_s: float) -> list[str]:
    """``put_info``'s keys, checked (see ``InfoCache.put_info``), duplicates dropped."""
    if isinstance(keys, str):
        raise ValueError("put_info takes a sequence of keys, not one string")
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError("put_info needs at least one key, each a non-empty string")
    if not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"put_info needs a positive, finite ttl_s, not {ttl_s!r}")
    return list(dict.fromkeys(keys))


# --- resources (ResourcePools) ---------------------------------------------------------------


def resource_spec_to_json(spec: ResourceSpec) -> str:
    """A resource's spec as stored, secrets included (the store is trusted; never log it)."""
    return json.dumps(spec_record(spec), separators=(",", ":"))


def resource_spec_from_json(text: str) -> ResourceSpec:
    """The inverse of ``resource_spec_to_json``."""
    return spec_from_record(json.loads(text))


def counters_to_json(counters: Counters) -> str:
    """A resource's counters as stored."""
    record = dataclasses.asdict(counters)
    record["failures"] = dict(counters.failures)
    return json.dumps(record, separators=(",", ":"))


def counters_from_json(text: str) -> Counters:
    """The inverse of ``counters_to_json``."""
    data = json.loads(text)
    data["failures"] = {str(k): int(v) for k, v in (data.get("failures") or {}).items()}
    return Counters(**data)


def live_to_json(resource: Resource) -> str:
    """What changes as a resource is used (state, until, counters, times), as one record: the
    Redis value of ``res:ID``, read by every ``lend``. The spec is stored apart."""
    return json.dumps(
        {
            "state": resource.state.value,
            "until": resource.until,
            "counters": json.loads(counters_to_json(resource.counters)),
            "created_at": resource.created_at,
            "updated_at": resource.updated_at,
        },
        separators=(",", ":"),
    )


def resource_from_live(resource_id: str, spec: ResourceSpec, text: str) -> Resource:
    """A ``Resource`` from its spec and its ``live_to_json`` record."""
    data = json.loads(text)
    return resource_from_fields(
        resource_id,
        spec,
        {
            "state": data["state"],
            "until": data.get("until"),
            "counters": json.dumps(data.get("counters") or {}),
            "created_at": data.get("created_at", 0.0),
            "updated_at": data.get("updated_at", 0.0),
        },
    )


def resource_from_fields(
    resource_id: str, spec: ResourceSpec, fields: Mapping[str, Any]
) -> Resource:
    """A ``Resource`` from its spec and its live columns (SQLite: ``state``, ``until``,
    ``counters`` as JSON, ``created_at``, ``updated_at``)."""
    return Resource(
        id=resource_id,
        spec=spec,
        state=ResourceState(fields["state"]),
        until=_opt_float(fields.get("until")),
        counters=counters_from_json(str(fields.get("counters") or "{}")),
        created_at=float(fields.get("created_at") or 0.0),
        updated_at=float(fields.get("updated_at") or 0.0),
    )


def use_to_json(use: Use) -> str:
    """One entry of a resource's use history as stored."""
    return json.dumps(dataclasses.asdict(use), separators=(",", ":"))


def use_from_json(text: str) -> Use:
    """The inverse of ``use_to_json``."""
    return Use(**json.loads(text))


def uses_to_json(uses: Sequence[Use]) -> str:
    """A use history (oldest first) as one JSON array (SQLite's ``resource_uses.uses``)."""
    return "[" + ",".join(use_to_json(u) for u in uses) + "]"


def uses_from_json(text: str | None) -> list[Use]:
    """The inverse of ``uses_to_json``; no row reads as no history."""
    return [Use(**item) for item in json.loads(text)] if text else []


# --- host budgets (HostBudgets) ----------------------------------------------------------------


def budget_key(host: str) -> str:
    """``host`` as both backends key a budget: lower case, no trailing dot (as ``hosts.host_key``
    and ``hosts.governing_host`` spell it), not validated: a request's own host, an address
    among them, is asked about as it comes."""
    return host.lower().rstrip(".")


def checked_positive(name: str, value: float) -> float:
    """``value`` when it is a positive finite number, else ``ValueError`` naming ``name``."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number, not {value!r}")
    return float(value)


def checked_time(name: str, value: float) -> float:
    """``value`` when it is a finite number (an epoch time), else ``ValueError``."""
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite time, not {value!r}")
    return float(value)


def host_limit_to_json(limit: HostLimit) -> str:
    """A host's limit as stored."""
    return json.dumps(dataclasses.asdict(limit), separators=(",", ":"))


def host_limit_from_json(text: str | None) -> HostLimit | None:
    """The inverse of ``host_limit_to_json``; no text (a host known by a cooldown) is None."""
    return HostLimit(**json.loads(text)) if text else None


def host_budget_from_fields(
    host: str, fields: Mapping[str, Any], proxy_cooldowns: Mapping[str, float], in_use: int
) -> HostBudget:
    """A ``HostBudget`` from a stored host record (SQLite: the ``hosts`` row; Redis: the
    ``host:H`` hash, '' for none): ``limit_json``, ``rate_per_s``, ``rate_changed_at``,
    ``cooldown_until``, ``requests``, ``throttled``."""
    return HostBudget(
        host=host,
        limit=host_limit_from_json(_opt_str(fields.get("limit_json"))),
        rate_per_s=_opt_float(fields.get("rate_per_s")),
        rate_changed_at=float(fields.get("rate_changed_at") or 0.0),
        cooldown_until=_opt_float(fields.get("cooldown_until")),
        proxy_cooldowns=dict(proxy_cooldowns),
        in_use=in_use,
        requests=int(fields.get("requests") or 0),
        throttled=int(fields.get("throttled") or 0),
    )
