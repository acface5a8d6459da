"""Batched completions: many lanes finishing at once cost one store call, not one each."""

from __future__ import annotations

import asyncio
import logging

from hauler.clock import Clock, SystemClock
from hauler.errors import StoreUnavailable
from hauler.store.base import Completion, JobStore

logger = logging.getLogger(__name__)


class CompletionBatcher:
    """Applies completions with ``store.complete``, up to ``max_batch`` per call, group-commit
    style: a lone completion goes at once; those that arrive while a call is in flight go
    together in the next one. Busy workers batch, idle ones add no latency.

    ``complete`` waits until its completion is applied, so a lane keeps its lease (and the
    heartbeat keeps renewing it) until the store has recorded the job as done.
    """

    def __init__(
        self,
        store: JobStore,
        max_batch: int = 64,
        retry_cap_s: float = 2.0,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._max_batch = max_batch
        self._retry_cap_s = retry_cap_s
        self._pending: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._has_items = asyncio.Event()

    async def complete(self, completion: Completion) -> bool:
        """Queue ``completion`` and wait: True when applied, False when the lease was lost."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        self._has_items.set()
        # shield: a lane cancelled now must not cancel the flush that other lanes wait on.
        return await asyncio.shield(future)

    async def run(self) -> None:
        """Flush forever (until cancelled); store outages are retried with backoff."""
        delay_s = 0.05
        while True:
            await self._has_items.wait()
            try:
                await self.flush()
                delay_s = 0.05
            except StoreUnavailable as exc:
                logger.warning("cannot record completions, retrying in %.2fs: %s", delay_s, exc)
                await self._clock.sleep(delay_s)
                delay_s = min(delay_s * 2, self._retry_cap_s)

    async def flush(self) -> None:
        """Apply every pending completion now. Raises ``StoreUnavailable`` (nothing is lost:
        the completions stay pending)."""
        while self._pending:
            batch = self._pending[: self._max_batch]
            lost = set(await self._store.complete([c for c, _ in batch]))
            del self._pending[: len(batch)]
            for completion, future in batch:
                if not future.done():
                    future.set_result(completion.job_id not in lost)
        self._has_items.clear()

    def abandon(self) -> None:
        """Give up on pending completions (the store stayed unreachable at exit)."""
        for _, future in self._pending:
            if not future.done():
                future.set_exception(StoreUnavailable("could not record the completion"))
        self._pending.clear()
