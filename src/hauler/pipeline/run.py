"""``Pipeline``: one job end to end, the same for ``get``, the worker and (later) the API.

resolve (which kind, which handler) → acquire (proxy, account: ``ResourceBroker``) → handle
(``Handler.run``) → verify (staged artifacts against their expectations) → finalize (atomic
rename, durability) → report (``Observer``). A kind differs from another only in its handler.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from hauler.errors import HaulerError
from hauler.logcontext import host_var, job_id_var
from hauler.models import JobSpec
from hauler.observe import NullObserver, Observer
from hauler.pipeline.acquire import FixedResources, ResourceBroker
from hauler.pipeline.finalize import finalize
from hauler.pipeline.handler import JobRun, RunOptions
from hauler.pipeline.outcome import Outcome
from hauler.pipeline.resolve import Resolver
from hauler.pipeline.verify import verify
from hauler.progress import NullProgress, ProgressSink


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
    ) -> None:
        self.resolver = resolver
        self.output_dir = output_dir
        self.options = options or RunOptions()
        self._broker = broker or FixedResources()
        self._observer = observer or NullObserver()
        self._is_observed = observer is not None
        self._durable = durable

    async def run(
        self, spec: JobSpec, progress: ProgressSink | None = None, job_id: str | None = None
    ) -> Outcome:
        """Run ``spec`` to its verified, finalised artifacts.

        Raises the ``HaulerError`` taxonomy only; the caller decides retry or failure.
        """
        job_token = job_id_var.set(job_id)
        host_token = host_var.set(spec.host)
        started = time.monotonic()
        kind = self.resolver.kind_of(spec)
        try:
            outcome = await self._run(spec, self._sink(progress), job_id)
        except HaulerError as exc:
            self._observer.job_handled(job_id, kind.value, str(exc.error_class), _since(started))
            raise
        finally:
            host_var.reset(host_token)
            job_id_var.reset(job_token)
        self._observer.job_handled(job_id, kind.value, None, _since(started))
        return outcome

    async def _run(self, spec: JobSpec, progress: ProgressSink, job_id: str | None) -> Outcome:
        handler = self.resolver.handler_for(self.resolver.kind_of(spec))
        async with self._broker.acquire(spec) as resources:
            job = JobRun(spec, job_id, self.output_dir, self.options, resources, progress)
            outcome = await handler.run(job)
            verified = [await verify(artifact) for artifact in outcome.artifacts]
        on_existing = self.options.on_existing
        final = [
            await finalize(artifact, spec.url, on_existing, durable=self._durable)
            for artifact in verified
        ]
        return replace(outcome, artifacts=tuple(final))

    def _sink(self, progress: ProgressSink | None) -> ProgressSink:
        sink = progress or NullProgress()
        return _ObservedProgress(sink, self._observer) if self._is_observed else sink


def _since(started: float) -> float:
    return time.monotonic() - started
