"""Batched completions: many lanes finishing at once cost one store call, not one each."""

from __future__ import annotations

import asyncio
import logging

from hauler.errors import StoreUnavailable
from hauler.store.base import Completion, Store

logger = logging.getLogger(__name__)


class CompletionBatcher:
    """Collects completions and applies them with ``store.complete`` every ``flush_s`` or every
    ``max_batch`` jobs, whichever comes first.

    ``complete`` waits until its completion is applied, so a lane keeps its lease (and the
    heartbeat keeps renewing it) until the store has recorded the job as done.
    """

    def __init__(self, store: Store, flush_s: float = 0.05, max_batch: int = 64) -> None:
        self._store = store
        self._flush_s = flush_s
        self._max_batch = max_batch
        self._pending: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._has_items = asyncio.Event()
        self._is_full = asyncio.Event()

    async def complete(self, completion: Completion) -> bool:
        """Queue ``completion`` and wait: True when applied, False when the lease was lost."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        self._has_items.set()
        if len(self._pending) >= self._max_batch:
            self._is_full.set()
        # shield: a lane cancelled now must not cancel the flush that other lanes wait on.
        return await asyncio.shield(future)

    async def run(self) -> None:
        """Flush forever (until cancelled); store outages are retried with backoff."""
        delay_s = self._flush_s
        while True:
            await self._has_items.wait()
            try:
                async with asyncio.timeout(self._flush_s):
                    await self._is_full.wait()
            except TimeoutError:
                pass
            try:
                await self.flush()
                delay_s = self._flush_s
            except StoreUnavailable as exc:
                delay_s = min(delay_s * 2, 2.0)
                logger.warning("cannot record completions, retrying in %.2fs: %s", delay_s, exc)
                await asyncio.sleep(delay_s)

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
        self._is_full.clear()

    def abandon(self) -> None:
        """Give up on pending completions (the store stayed unreachable at exit)."""
        for _, future in self._pending:
            if not future.done():
                future.set_exception(StoreUnavailable("could not record the completion"))
        self._pending.clear()
