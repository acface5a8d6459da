"""The acquire stage: what a job borrows for its run (a proxy, an account) and gives back.

``ResourceBroker`` is the seam the proxy and account pools plug into: ``acquire`` lends the
resources for one job and takes them back when the job ends, seeing how it ended (a bannable
error bans what it lent). Until the pools exist, ``FixedResources`` lends every job the same
configured proxy.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from hauler.clock import Clock
from hauler.config import PoolSettings
from hauler.errors import HaulerError
from hauler.models import JobSpec
from hauler.pipeline.handler import Resources
from hauler.policy.ban import BanRules
from hauler.pools.lender import PoolLender, PoolRules
from hauler.resources import Strategy
from hauler.store.base import ResourcePools


class ResourceBroker(Protocol):
    """Lends resources to jobs."""

    @property
    def can_rotate(self) -> bool:
        """A second ``acquire`` may lend other resources: a failure that blames the ones lent
        is worth trying again at once."""
        ...

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        """The resources for one run of ``spec``, held until the block ends; an exception
        leaving the block is the run's failure (its class says whether to ban)."""
        ...


class FixedResources:
    """Every job gets the same proxy (``--proxy``, the settings, or none) and no account."""

    can_rotate = False

    def __init__(self, proxy: str | None = None) -> None:
        self._resources = Resources(proxy=proxy)

    @asynccontextmanager
    async def _lend(self) -> AsyncIterator[Resources]:
        yield self._resources

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        """The fixed resources; nothing to give back."""
        del spec
        return self._lend()


class PooledResources:
    """Every run is lent a proxy and an account from the store's pools (``PoolLender``), only
    those its spec pins (``JobSpec.pools``), and gives them back with how it ended: a bannable
    error counts against them, fleet-wide."""

    can_rotate = True

    def __init__(self, lender: PoolLender) -> None:
        self._lender = lender

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        """The pools' proxy and account for one run of ``spec``."""
        return self._lend(spec)

    @asynccontextmanager
    async def _lend(self, spec: JobSpec) -> AsyncIterator[Resources]:
        lent = await self._lender.lend(spec.url, spec.host, spec.pools)
        resources = Resources(
            proxy=lent.proxy.spec.name if lent.proxy else None,
            headers=lent.headers,
            proxy_id=lent.proxy.id if lent.proxy else None,
            account_id=lent.account.id if lent.account else None,
        )
        started = time.monotonic()
        try:
            yield resources
        except HaulerError as exc:
            await self._lender.give_back(lent, spec.host, exc, time.monotonic() - started)
            raise
        except BaseException:
            await self._lender.give_back(lent, spec.host, None, None, is_counted=False)
            raise
        await self._lender.give_back(lent, spec.host, None, time.monotonic() - started)


def broker_for(
    pools: ResourcePools,
    settings: PoolSettings,
    proxy: str | None,
    clock: Clock | None = None,
    *,
    holder: str | None = None,
) -> ResourceBroker:
    """The acquire stage a worker uses: the store's pools unless they are off (``--no-pools``)
    or a proxy was given explicitly (``--proxy`` wins); the proxy alone otherwise. Pools
    that are empty lend nothing, and the store is asked about them again every few seconds.
    Lends are held under ``holder`` (the worker's name: ``PoolLender``)."""
    if not settings.enabled or proxy is not None:
        return FixedResources(proxy)
    return PooledResources(PoolLender(pools, pool_rules(settings), clock, holder=holder))


def pool_rules(settings: PoolSettings) -> PoolRules:
    """The lender's rules from ``[pools]``."""
    bans = BanRules(
        proxy_distinct_accounts=settings.proxy_distinct_accounts,
        proxy_window_s=settings.proxy_window_s,
        proxy_fault_streak=settings.proxy_fault_streak,
        account_distinct_proxies=settings.account_distinct_proxies,
        account_rest_uses=settings.account_rest_uses,
        account_rest_after_s=settings.account_rest_after_s,
        rest_s=settings.rest_s,
        ban_base_s=settings.ban_base_s,
        ban_cap_s=settings.ban_cap_s,
    )
    return PoolRules(Strategy(settings.strategy), bans, settings.max_in_use)
