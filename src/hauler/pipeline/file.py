"""The handler of plain files: the transfer engine, which verifies (size, checksum) and renames
atomically itself, so its artifact comes back final."""

from __future__ import annotations

from hauler.models import JobKind
from hauler.pipeline.handler import JobRun
from hauler.pipeline.outcome import Artifact, Outcome
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest, TransferResult


class FileHandler:
    """Runs ``file`` jobs (and ``auto`` ones no other kind claims) through one shared engine."""

    def __init__(self, engine: Engine, *, pages_are_media: bool = False) -> None:
        self._engine = engine
        self._pages_are_media = pages_are_media

    async def run(self, job: JobRun) -> Outcome:
        """Download the job's URL into a verified file under its final name; ``NotAFile`` for
        an ``auto`` job that answers a page or manifest, when media jobs can run here."""
        is_guess = self._pages_are_media and job.spec.kind is JobKind.AUTO
        request = transfer_request(job, pages_are_media=is_guess)
        return outcome_of(await self._engine.download(request, job.progress))


def transfer_request(job: JobRun, *, pages_are_media: bool = False) -> TransferRequest:
    """The engine request for ``job``."""
    spec = job.spec
    return TransferRequest(
        url=spec.url,
        output_dir=job.output_dir,
        filename=spec.output,
        headers=job.headers,
        checksum=spec.checksum,
        connections=job.options.connections,
        limit_rate_bps=job.options.limit_rate_bps,
        proxy=job.resources.proxy,
        on_existing=job.options.on_existing,
        pages_are_media=pages_are_media,
    )


def outcome_of(result: TransferResult) -> Outcome:
    """The engine's result as an ``Outcome`` with one final artifact."""
    artifact = Artifact(path=result.path, size=result.size, checksum=result.checksum)
    return Outcome(
        kind=JobKind.FILE,
        url=result.url,
        final_url=result.final_url,
        artifacts=(artifact,),
        bytes_fetched=result.bytes_fetched,
        elapsed_s=result.elapsed_s,
        resumed_bytes=result.resumed_bytes,
        skipped=result.skipped,
        details={
            "etag": result.etag,
            "last_modified": result.last_modified,
            "content_type": result.content_type,
        },
    )
