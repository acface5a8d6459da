"""The acquire stage: what a job borrows for its run (a proxy, an account) and gives back.

``ResourceBroker`` is the seam the proxy and account pools plug into: ``acquire`` lends the
resources for one job and takes them back when the job ends, seeing how it ended (a bannable
error bans what it lent). Until the pools exist, ``FixedResources`` lends every job the same
configured proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from hauler.models import JobSpec
from hauler.pipeline.handler import Resources


class ResourceBroker(Protocol):
    """Lends resources to jobs."""

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        """The resources for one run of ``spec``, held until the block ends; an exception
        leaving the block is the run's failure (its class says whether to ban)."""
        ...


class FixedResources:
    """Every job gets the same proxy (``--proxy``, the settings, or none) and no account."""

    def __init__(self, proxy: str | None = None) -> None:
        self._resources = Resources(proxy=proxy)

    @asynccontextmanager
    async def _lend(self) -> AsyncIterator[Resources]:
        yield self._resources

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        """The fixed resources; nothing to give back."""
        del spec
        return self._lend()
