"""``Pipeline``: one job end to end, the same for ``get``, the worker and (later) the API.

resolve (which kind, which handler) → acquire (proxy, account: ``ResourceBroker``) → handle
(``Handler.run``) → verify (staged artifacts against their expectations) → finalize (atomic
rename, durability) → report (``Observer``). A kind differs from another only in its handler.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from hauler.errors import (
    BadMedia,
    Bannable,
    ContentMismatch,
    HaulerError,
    NoMedia,
    NotAFile,
    ProxyFailed,
)
from hauler.logcontext import host_var, job_id_var
from hauler.models import JobKind, JobSpec
from hauler.observe import NullObserver, Observer
from hauler.pipeline.acquire import FixedResources, ResourceBroker
from hauler.pipeline.finalize import finalize, write_sidecar
from hauler.pipeline.handler import Continuation, JobRun, Resources, RunOptions
from hauler.pipeline.outcome import Artifact, Outcome
from hauler.pipeline.resolve import Resolver
from hauler.pipeline.verify import verify
from hauler.progress import NullProgress, ProgressSink

_log = logging.getLogger(__name__)
# What a failure that blames the resources lent does (``[pools] on_bannable``).
OnBannable = Literal["retry_other", "fail", "stop_lane"]
# Runs of one job with other resources after a failure that blames those lent (``on_bannable
# = retry_other``), before the failure goes to the caller (the worker's retries).
ROTATIONS = 3


class _ObservedProgress:
    """A progress sink that also tells the observer of every byte."""

    def __init__(self, inner: ProgressSink, observer: Observer) -> None:
        self._inner = inner
        self._observer = observer

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        self._inner.started(name, total_bytes, done_bytes)

    def advanced(self, nbytes: int) -> None:
        self._inner.advanced(nbytes)
        self._observer.bytes_transferred(nbytes)

    def __getattr__(self, name: str) -> object:
        # The optional ``TransferEvents`` (connections, retrying) of the sink it wraps.
        return getattr(self._inner, name)


class Pipeline:
    """Runs jobs into ``output_dir``: ``await pipeline.run(spec)``.

    ``durable`` (a worker's default) flushes files and their directory entries to disk before
    a job is reported done: a power cut then loses no finished file.
    """

    def __init__(
        self,
        resolver: Resolver,
        output_dir: Path,
        *,
        options: RunOptions | None = None,
        broker: ResourceBroker | None = None,
        observer: Observer | None = None,
        durable: bool = False,
        on_bannable: OnBannable = "retry_other",
    ) -> None:
        self.resolver = resolver
        self.output_dir = output_dir
        self.options = options or RunOptions()
        self._broker = broker or FixedResources()
        self._observer = observer or NullObserver()
        self._is_observed = observer is not None
        self._durable = durable
        self._rotations = ROTATIONS if on_bannable == "retry_other" else 1
        self._stops_lane = on_bannable == "stop_lane"

    async def run(
        self,
        spec: JobSpec,
        progress: ProgressSink | None = None,
        job_id: str | None = None,
        continuation: Continuation | None = None,
    ) -> Outcome:
        """Run ``spec`` to its verified, finalised artifacts (``continuation``: what a long
        job carries across attempts, and its stop request).

        Raises the ``HaulerError`` taxonomy only; the caller decides retry or failure.
        """
        job_token = job_id_var.set(job_id)
        host_token = host_var.set(spec.host)
        started = time.monotonic()
        kind = self.resolver.kind_of(spec)  # asked once: it may ask ~1,800 extractors
        try:
            run = continuation or Continuation()
            outcome = await self._run(spec, kind, self._sink(progress), job_id, run)
        except HaulerError as exc:
            self._observer.job_handled(job_id, kind.value, str(exc.error_class), _since(started))
            raise
        finally:
            host_var.reset(host_token)
            job_id_var.reset(job_token)
        self._observer.job_handled(job_id, kind.value, None, _since(started))
        return outcome

    def stops_lane_after(self, exc: BaseException) -> bool:
        """The lane that ran into ``exc`` is to claim nothing more: ``on_bannable =
        stop_lane``, and ``exc`` blames what the job was lent (a bot wall, a proxy)."""
        return self._stops_lane and isinstance(exc, Bannable | ProxyFailed)

    async def _run(
        self,
        spec: JobSpec,
        kind: JobKind,
        progress: ProgressSink,
        job_id: str | None,
        continuation: Continuation,
    ) -> Outcome:
        outcome, verified = await self._lent(spec, kind, progress, job_id, continuation)
        on_existing = self.options.on_existing
        final = [
            await finalize(
                artifact, artifact.source or spec.url, on_existing, durable=self._durable
            )
            for artifact in verified
        ]
        sidecars = [
            Artifact(write_sidecar(_beside(final[0].path, suffix), text), len(text), role="info")
            for suffix, text in outcome.sidecars.items()
            if final
        ]
        if outcome.scratch is not None:
            shutil.rmtree(outcome.scratch, ignore_errors=True)  # never follows a link in it
        return replace(outcome, artifacts=(*final, *sidecars), scratch=None)

    async def _lent(
        self,
        spec: JobSpec,
        kind: JobKind,
        progress: ProgressSink,
        job_id: str | None,
        continuation: Continuation,
    ) -> tuple[Outcome, list[Artifact]]:
        """The job handled and verified with what the broker lends. A failure that blames
        what was lent (a bot wall: the account; a proxy's own failure) is tried again at once
        with other resources when the broker has others (the pools), ``ROTATIONS`` times
        (``on_bannable = retry_other``; otherwise it goes up at once)."""
        rotations = self._rotations
        for rotation in range(1, rotations + 1):
            try:
                async with self._broker.acquire(spec) as resources:
                    run = JobRun(
                        spec, job_id, self.output_dir, self.options, resources, progress,
                        continuation,
                    )  # fmt: skip
                    outcome = _with_resources(await self._handle(run, kind), resources)
                    return outcome, await _verified(outcome)
            except (Bannable, ProxyFailed) as exc:
                if not self._broker.can_rotate or rotation == rotations:
                    raise
                _log.info("%s: trying other resources (%d of %d)", exc.message, rotation, rotations)
        raise AssertionError("unreachable")

    async def _handle(self, job: JobRun, kind: JobKind) -> Outcome:
        """The job through its kind's handler. An ``auto`` job the file handler finds to be a
        page or a manifest runs as media; one yt-dlp then finds no media in is a file after
        all (``wget`` of a page saves the page)."""
        handler = self.resolver.handler_for(kind)
        try:
            return await handler.run(job)
        except NotAFile as exc:
            _log.info("%s: running it as a media job", exc.message)
        as_media = replace(job, spec=job.spec.model_copy(update={"kind": JobKind.MEDIA}))
        try:
            return await self.resolver.handler_for(JobKind.MEDIA).run(as_media)
        except NoMedia as exc:
            _log.info("no media found (%s): saving it as a file", exc.message)
        as_file = replace(job, spec=job.spec.model_copy(update={"kind": JobKind.FILE}))
        return await self.resolver.handler_for(JobKind.FILE).run(as_file)

    def _sink(self, progress: ProgressSink | None) -> ProgressSink:
        sink = progress or NullProgress()
        return _ObservedProgress(sink, self._observer) if self._is_observed else sink


async def _verified(outcome: Outcome) -> list[Artifact]:
    """Every artifact checked; when one fails, the handler's scratch directory goes too (what
    made the bad file, a merge's inputs or a fragment download's state, would make it again)."""
    try:
        return [await verify(artifact) for artifact in outcome.artifacts]
    except (BadMedia, ContentMismatch):
        if outcome.scratch is not None:
            shutil.rmtree(outcome.scratch, ignore_errors=True)
        raise


def _with_resources(outcome: Outcome, resources: Resources) -> Outcome:
    """``outcome`` saying which pool proxy and account served it (ids, never secrets)."""
    used = {"proxy": resources.proxy_id, "account": resources.account_id}
    if not any(used.values()):
        return outcome
    return replace(outcome, details={**outcome.details, "resources": used})


def _beside(path: Path, suffix: str) -> Path:
    """``x.mp4`` with ``suffix`` (``.info.json``) for its extension: ``x.info.json``."""
    return path.with_name(path.stem + suffix)


def _since(started: float) -> float:
    return time.monotonic() - started
