"""Context variables that bind a job id and host to every log line emitted while working on it."""

from __future__ import annotations

from contextvars import ContextVar

job_id_var: ContextVar[str | None] = ContextVar("hauler_job_id", default=None)
host_var: ContextVar[str | None] = ContextVar("hauler_host", default=None)
