"""What a dead worker held, given back by the living (``HoldSweeper``).

A worker lends under its name (``PoolLender``'s holder) and the store counts, with every lend
and give back, how many of each resource each holder has (``ResourcePools``). A worker killed
with -9 never gives back: without a sweep its lends would keep ``in_use`` up for good, the
capacity of ``[pools] max_in_use`` lost and ``least_connections`` shunning the resource.

Every worker runs a ``HoldSweeper`` beside its lanes while the pools are enabled (``sweeping``).
Every ``[pools] hold_sweep_s`` (30 s, on the injected clock) it lists the holders, then the
workers alive (``WorkerRegistry``: a record lapses a few heartbeats after a worker's last), and
releases each holder that is neither alive nor itself (``release_holder``) once it has found it
so for ``GRACE_SWEEPS`` intervals: released at the first sweep that long after it first saw it
dead (the third, sweeps being one interval apart). A worker beats its record before it claims
(so before it lends), and the holders are read before the workers, so a holder missing from the
registry is dead, unless its record lapsed while it lives (the store out of reach for a few
beats, clocks far apart): the grace is for that. Even then nothing is counted wrong: a give
back whose hold was released takes nothing off ``in_use`` (the store's rule).

Several workers sweep the same dead holder; the store's release is atomic, so the first gives
its holds back and the others release none (logged at DEBUG only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

from hauler.clock import Clock, SystemClock
from hauler.config import PoolSettings
from hauler.errors import HaulerError
from hauler.pools.background import in_background
from hauler.store.base import ResourcePools, WorkerRegistry

_log = logging.getLogger(__name__)
# A holder missing from the registry is released once found so for this many intervals.
GRACE_SWEEPS = 2


class HoldsStore(ResourcePools, WorkerRegistry, Protocol):
    """What a sweep reads and writes: the pools' holders and the workers alive."""


# Called after every sweep with the holders it released and how many holds each gave back.
OnSweep = Callable[[Mapping[str, int]], None]


def _no_report(released: Mapping[str, int]) -> None:
    del released


class HoldSweeper:
    """Releases the holds of holders that are not alive (see the module); ``me`` is this
    worker's own name, never released by its own sweep."""

    def __init__(
        self,
        store: HoldsStore,
        me: str,
        every_s: float,
        clock: Clock | None = None,
        *,
        on_sweep: OnSweep = _no_report,
    ) -> None:
        self._store = store
        self._me = me
        self._every_s = every_s
        self._clock = clock or SystemClock()
        self._on_sweep = on_sweep
        # holder -> when (monotonic) a sweep first found it holding and not alive.
        self._dead_since: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every interval until ``stop`` is set; a sweep the store fails is logged, and
        the next one tries again."""
        while not await self._clock.wait_for(stop, self._every_s):
            try:
                self._on_sweep(await self.sweep())
            except HaulerError as exc:
                _log.warning("dead workers' holds not swept this time: %s", exc)

    async def sweep(self) -> dict[str, int]:
        """One sweep: the holders released now, with how many holds each gave back."""
        holders = await self._store.resource_holders()
        alive = {worker.name for worker in await self._store.workers()}
        now = self._clock.monotonic()
        dead = [h for h in holders if h not in alive and h != self._me]
        # Only the holders dead now are remembered: one seen alive again starts over.
        self._dead_since = {h: self._dead_since.get(h, now) for h in dead}
        released: dict[str, int] = {}
        for holder in dead:
            if now - self._dead_since[holder] >= GRACE_SWEEPS * self._every_s:
                released[holder] = await self._release(holder)
        return released

    async def _release(self, holder: str) -> int:
        count = await self._store.release_holder(holder)
        del self._dead_since[holder]
        if count:
            _log.info("gave back %d resources held by dead worker %s", count, holder)
        else:
            _log.debug("dead worker %s held nothing more (another worker gave it back)", holder)
        return count


@contextlib.asynccontextmanager
async def sweeping(
    store: HoldsStore,
    settings: PoolSettings,
    me: str,
    clock: Clock | None = None,
    *,
    on_sweep: OnSweep = _no_report,
) -> AsyncIterator[HoldSweeper | None]:
    """Run a ``HoldSweeper`` for worker ``me`` in the background for the duration of the
    block, every ``settings.hold_sweep_s``, when the pools are enabled (else yield None and run
    nothing); stopped at the block's end."""
    if not settings.enabled:
        yield None
        return
    sweeper = HoldSweeper(store, me, settings.hold_sweep_s, clock, on_sweep=on_sweep)
    async with in_background("hauler-hold-sweeper", sweeper.run):
        yield sweeper
