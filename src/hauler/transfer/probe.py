"""The probe: the first GET ``Range: bytes=<offset>-`` (not HEAD: many servers lie to HEAD).

It learns the size, range support, validators, final URL (after redirects), Content-Disposition
and Content-Type, and its body keeps streaming into the first segment while the other
connections start. Transient failures (503 with Retry-After, resets) are retried here, except
a refused connection: on first contact it means nothing listens at that address (a wrong port, a
server that is down), and curl, wget and aria2c give up at once too. A worker's job still retries
later, with the job's own backoff; a lane refused mid-file retries as any transient failure.
An answer that is not valid HTTP (a body longer than its Content-Length, in aiohttp's eyes)
fails at once too: the same server sends it again.
"""

from __future__ import annotations

from hauler.clock import Clock
from hauler.errors import ConnectionRefused, InvalidResponse, Transient
from hauler.policy.retry import Action, RetryPolicy
from hauler.progress import TransferEvents
from hauler.transfer.body import Body, Fetcher, RangeAsk, Reply


async def probe(
    fetcher: Fetcher,
    url: str,
    ask: RangeAsk,
    policy: RetryPolicy,
    retries: int,
    *,
    events: TransferEvents | None = None,
    clock: Clock,
) -> tuple[Body, Reply]:
    """Open ``url`` for ``ask``, retrying transient failures up to ``retries`` times; each
    retry is told to ``events`` first (a name that does not resolve is not silence)."""
    failures = 0
    while True:
        try:
            return await fetcher.open(url, ask)
        except (ConnectionRefused, InvalidResponse):
            raise
        except Transient as exc:
            failures += 1
            decision = policy.decide(exc, failures, retries + 1)
            if decision.action is Action.FAIL:
                raise
            if events is not None:
                events.retrying(exc.message, failures + 1, retries + 1, decision.delay_s)
            await clock.sleep(decision.delay_s)
