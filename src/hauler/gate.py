"""The request gate: the seam every HTTP request of a download passes before it is sent.

``transfer.fetch`` asks the gate before each request (every redirect hop too) and tells its
ticket how the answer went; the ticket is closed when the answer's body ends. The gate decides
how long a request waits: ``pools.hostgate.HostGate`` holds requests to the fleet-wide per-host
budgets in the store (rate, connections, cooldown after a 429/503). ``OPEN`` lets everything go.
"""

from __future__ import annotations

from typing import Protocol


class Ticket(Protocol):
    """One request let through the gate, until its body ends."""

    async def throttled(self, retry_after_s: float | None) -> None:
        """The answer was a 429/503 (``retry_after_s``: its Retry-After, when usable): the
        host, or the proxy on it, cools down before the caller goes on."""
        ...

    def close(self) -> None:
        """The request is over (its body read, dropped, or the request failed): what it held
        frees. Safe to call more than once."""
        ...


class RequestGate(Protocol):
    """Decides when each request may go."""

    async def enter(self, url: str, proxy: str | None) -> Ticket:
        """Wait until a request to ``url`` through ``proxy`` (its URL, None when direct) may
        be sent, and return its ticket. Raises ``Throttled`` (with ``retry_after_s``) when the
        wait would be too long to spend holding a lane: the job is retried later instead."""
        ...


class _OpenTicket:
    """A ticket that holds nothing."""

    async def throttled(self, retry_after_s: float | None) -> None:
        del retry_after_s

    def close(self) -> None:
        return None


class _OpenGate:
    """Lets every request go at once."""

    async def enter(self, url: str, proxy: str | None) -> Ticket:
        del url, proxy
        return OPEN_TICKET


OPEN_TICKET: Ticket = _OpenTicket()
OPEN: RequestGate = _OpenGate()
