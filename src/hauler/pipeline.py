"""One job end to end: resolve its kind, transfer, verify, finalise, and describe the result.

``hauler get`` and the worker's lanes both call ``run``: there is one code path for a download.
The engine verifies (size, checksum) and renames atomically; this layer maps a ``JobSpec`` onto
an engine request and a result onto the record the store keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hauler.logcontext import host_var, job_id_var
from hauler.models import JobKind, JobSpec, OnExisting
from hauler.transfer.engine import Engine
from hauler.transfer.request import ProgressSink, TransferRequest, TransferResult


@dataclass(frozen=True, slots=True)
class PipelineContext:
    """What a lane brings to every job: the shared engine and where files go."""

    engine: Engine
    output_dir: Path
    on_existing: OnExisting = OnExisting.RENAME
    connections: int | None = None
    limit_rate_bps: int | None = None
    proxy: str | None = None


def transfer_request(spec: JobSpec, ctx: PipelineContext) -> TransferRequest:
    """The engine request for ``spec`` in ``ctx``."""
    return TransferRequest(
        url=spec.url,
        output_dir=ctx.output_dir,
        filename=spec.output,
        headers=dict(spec.headers),
        checksum=spec.checksum,
        connections=ctx.connections,
        limit_rate_bps=ctx.limit_rate_bps,
        proxy=ctx.proxy,
        on_existing=ctx.on_existing,
    )


async def run(
    spec: JobSpec,
    ctx: PipelineContext,
    progress: ProgressSink | None = None,
    job_id: str | None = None,
) -> TransferResult:
    """Download ``spec`` to a verified file under ``ctx.output_dir``.

    Raises the ``HaulerError`` taxonomy only; the caller decides retry or failure.
    """
    job_token = job_id_var.set(job_id)
    host_token = host_var.set(spec.host)
    try:
        # Every kind that exists today resolves to a plain file transfer.
        assert spec.kind in (JobKind.AUTO, JobKind.FILE)
        return await ctx.engine.download(transfer_request(spec, ctx), progress)
    finally:
        host_var.reset(host_token)
        job_id_var.reset(job_token)


def result_record(result: TransferResult) -> dict[str, Any]:
    """The JSON-able record stored with a done job and printed by ``--json``."""
    return {
        "path": str(result.path),
        "size": result.size,
        "final_url": result.final_url,
        "bytes_fetched": result.bytes_fetched,
        "resumed_bytes": result.resumed_bytes,
        "elapsed_s": round(result.elapsed_s, 3),
        "skipped": result.skipped,
        "checksum": result.checksum,
        "etag": result.etag,
        "last_modified": result.last_modified,
        "content_type": result.content_type,
    }
