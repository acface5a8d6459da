"""A worker's background loops (the proxy prober, the hold sweeper) run beside its lanes for
the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(
    name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> AsyncIterator[None]:
    """``run(stop)`` as a task named ``name`` while the block runs. At the block's end ``stop``
    is set and the task cancelled (a round waiting on an unreachable store, or on a probe's
    timeout, ends at once) and waited for; an error that ended it (a bug: failed rounds are
    logged by the loops themselves) is raised then."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        # Waited for, not awaited: its cancellation is not ours to swallow or raise.
        await asyncio.wait([task])
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
