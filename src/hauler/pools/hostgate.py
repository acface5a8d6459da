"""The request gate over the store's per-host budgets: every worker's requests to a host share
one rate, one count of open connections and one cooldown (``gate.RequestGate``).

A worker keeps a view of which hosts the store holds anything for (limits, cooldowns), checked
every ``refresh_s`` by one number (``hosts_version``). A request to a host without a limit or
a cooldown goes at once, with no store call. A request to a limited host asks the store
(``enter_host``: one atomic call) and sleeps what it says: its token may be still to come, and
then the view is checked again before it sends, so that a cooldown another worker started
meanwhile holds it back too. The decisions are pure (``policy.hostrate``): how long a
Retry-After cools a host, and the rate's AIMD (halved on a 429/503, +10 % a minute of success),
written back by compare-and-set so that fifty workers change it once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hauler.clock import Clock, SystemClock
from hauler.config import HostSettings
from hauler.errors import HaulerError, StoreUnavailable, Throttled
from hauler.gate import Ticket
from hauler.hosts import Admission, HostBudget, HostLimit, Refusal, governing_host
from hauler.net import proxy_label
from hauler.policy.hostrate import HostEvent, adapt, cooldown_until
from hauler.store.base import HostBudgets

_log = logging.getLogger(__name__)

Pair = tuple[str, str | None]  # (budget, proxy label)
# At most one warning this often while the store cannot be asked.
WARN_EVERY_S = 60.0


@dataclass
class _View:
    """What this worker knows of the store's hosts: their limits and the cooldowns' ends."""

    version: int | None = None
    checked_at: float = -math.inf  # monotonic
    limits: dict[str, HostLimit] = field(default_factory=dict)
    cooling: dict[Pair, float] = field(default_factory=dict)  # (host, None): the host's own

    @classmethod
    def of(cls, budgets: list[HostBudget], version: int, checked_at: float) -> _View:
        """The view of the store's ``budgets`` as listed at ``version``."""
        view = cls(version, checked_at)
        for budget in budgets:
            if budget.limit is not None:
                view.limits[budget.host] = budget.limit
            if budget.cooldown_until is not None:
                view.cooling[budget.host, None] = budget.cooldown_until
            for label, until in budget.proxy_cooldowns.items():
                view.cooling[budget.host, label] = until
        return view

    def cool(self, host: str, label: str | None, until: float) -> None:
        """Note a cooldown this worker started (before the store is told)."""
        self.cooling[host, label] = max(until, self.cooling.get((host, label), until))

    def cooling_left_s(self, host: str, label: str | None, now: float) -> float:
        """How long the host, or the proxy on it, still cools (0: neither does)."""
        ends = [self.cooling.get((host, None), 0.0)]
        if label is not None:
            ends.append(self.cooling.get((host, label), 0.0))
        return max(0.0, max(ends) - now)

    def budget_for(self, host: str, label: str | None, now: float) -> str | None:
        """The budget a request to ``host`` asks, or None when nothing holds it back."""
        limited = governing_host(host, self.limits)
        if limited is not None:
            return limited
        return host if self.cooling_left_s(host, label, now) > 0 else None


class HostGate:
    """``gate.RequestGate`` over a store's ``HostBudgets``; ``aclose`` it before the store."""

    def __init__(
        self, budgets: HostBudgets, settings: HostSettings, clock: Clock | None = None
    ) -> None:
        self._budgets = budgets
        self._settings = settings
        self._clock = clock or SystemClock()
        self._view = _View()
        self._lock = asyncio.Lock()
        self._held: dict[Pair, set[str]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._warned_at = -math.inf

    async def enter(self, url: str, proxy: str | None) -> Ticket:
        """Wait until a request to ``url`` through ``proxy`` may go (``gate.RequestGate``)."""
        host = request_host(url)
        label = proxy_label(proxy) if proxy else None
        while True:
            try:
                await self._refresh()
                budget = self._view.budget_for(host, label, self._clock.now())
                ticket = None if budget is None else await self._ask(budget, label)
            except StoreUnavailable as exc:
                # Budgets are manners, not the download: a store that cannot answer lets the
                # request go (the worker's claims fail on their own meanwhile).
                self._warn_unavailable(exc)
                budget = None
            if budget is None:
                return _FreeTicket(self, host, label)
            if ticket is not None:
                return ticket

    def _warn_unavailable(self, exc: StoreUnavailable) -> None:
        now = self._clock.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            _log.warning("host budgets not kept, the store is unavailable: %s", exc.message)

    async def _ask(self, budget: str, label: str | None) -> Ticket | None:
        """One request to the store: the ticket, or None to ask again (refused, waited)."""
        slot = secrets.token_hex(8)
        ttl_s = self._settings.slot_ttl_s
        admission = await self._budgets.enter_host(budget, label, slot, ttl_s)
        if not admission.is_admitted:
            await self._wait(budget, admission.wait_s, admission.refusal)
            return None
        ticket = _BudgetTicket(self, budget, label, slot, admission)
        if budget in self._view.limits:
            self._hold(ticket.pair, slot)
        if admission.wait_s <= 0:
            return ticket
        try:
            await self._wait(budget, admission.wait_s, None)
            await self._refresh(since=self._clock.monotonic())
        except BaseException:
            ticket.close()
            raise
        if self._view.cooling_left_s(budget, label, self._clock.now()) > 0:
            ticket.close()  # a cooldown began while it waited for its token
            return None
        return ticket

    async def _wait(self, host: str, wait_s: float, refusal: Refusal | None) -> None:
        """Sleep ``wait_s``; ``Throttled`` when that is longer than a lane should be held."""
        if wait_s > self._settings.max_wait_s:
            why = "is cooling down" if refusal is Refusal.COOLDOWN else "is at its budget"
            raise Throttled(f"{host} {why} for {wait_s:.0f} s more", retry_after_s=wait_s)
        await self._clock.sleep(max(0.0, wait_s))

    async def _refresh(self, since: float | None = None) -> None:
        """Bring the view up to date: at most every ``refresh_s``, or when it was last checked
        before ``since`` (monotonic)."""
        if not self._is_stale(since):
            return
        async with self._lock:
            if not self._is_stale(since):
                return  # another request refreshed it meanwhile
            checked_at = self._clock.monotonic()
            version = await self._budgets.hosts_version()
            if version != self._view.version:
                budgets = await self._budgets.host_budgets()
                self._view = _View.of(budgets, version, checked_at)
            self._view.checked_at = checked_at

    def _is_stale(self, since: float | None) -> bool:
        checked_at = self._view.checked_at
        if since is not None:
            return checked_at < since
        return self._clock.monotonic() - checked_at >= self._settings.refresh_s

    async def throttled(
        self, host: str, label: str | None, retry_after_s: float | None, admission: Admission
    ) -> None:
        """A 429/503 from ``host`` (through ``label``): with a Retry-After, the pair (or the
        host, for a direct request) cools for the fleet; a host's rate in force is halved."""
        now = self._clock.now()
        try:
            if retry_after_s is not None:
                until = cooldown_until(now, retry_after_s, 0.0, max_s=self._settings.max_cooldown_s)
                self._view.cool(host, label, until)
                await self._budgets.cool_host(host, label, until)
                _log.info("%s cools down for %.1f s (Retry-After)", host, until - now)
            await self._adapt(host, HostEvent.THROTTLED, admission)
        except HaulerError as exc:
            _log.warning("the store was not told that %s throttled: %s", host, exc.message)

    async def _adapt(self, host: str, event: HostEvent, admission: Admission) -> None:
        """Write the rate ``adapt`` gives, when it changes it (compare-and-set: the first
        worker to see the change makes it)."""
        rate = admission.rate_per_s
        limit = self._view.limits.get(host)
        if rate is None or limit is None or limit.rate_per_s is None:
            return
        now = self._clock.now()
        adapted = adapt(rate, limit.rate_per_s, event, now, admission.rate_changed_at)
        if adapted.is_change_from(rate):
            await self._budgets.set_host_rate(host, adapted.rate_per_s, admission.rate_changed_at)

    def left(self, ticket: _BudgetTicket) -> None:
        """A ticket closed: its slot frees, and a success may grow the rate (in the
        background: ``close`` is called where nothing can wait)."""
        held = self._held.get(ticket.pair)
        holds = held is not None and ticket.slot in held
        if held is not None:
            held.discard(ticket.slot)
            if not held:
                del self._held[ticket.pair]
        if holds or not ticket.is_throttled:
            self._spawn(self._leave(ticket, holds))

    async def _leave(self, ticket: _BudgetTicket, holds: bool) -> None:
        host, label = ticket.pair
        try:
            if holds:
                await self._budgets.leave_host(host, label, ticket.slot)
            if not ticket.is_throttled:
                await self._adapt(host, HostEvent.SUCCESS, ticket.admission)
        except HaulerError as exc:
            _log.warning("the store was not told a request to %s ended: %s", host, exc.message)

    def _hold(self, pair: Pair, slot: str) -> None:
        self._held.setdefault(pair, set()).add(slot)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        """Keep the slots held renewed, so that only a dead worker's expire."""
        ttl_s = self._settings.slot_ttl_s
        while self._held:
            # A wait that does not move a FakeClock: only the requests' own waits do.
            if await self._clock.wait_for(self._closing, ttl_s / 3):
                return
            for (host, label), slots in list(self._held.items()):
                try:
                    await self._budgets.renew_host_slots(host, label, list(slots), ttl_s)
                except HaulerError as exc:
                    _log.warning("the slots on %s were not renewed: %s", host, exc.message)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Give back what is held (the requests still open lose their slots) and stop."""
        self._closing.set()
        if self._renewer is not None:
            await asyncio.gather(self._renewer, return_exceptions=True)
        for (host, label), slots in list(self._held.items()):
            for slot in slots:
                self._spawn(self._budgets.leave_host(host, label, slot))
        self._held.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def request_host(url: str) -> str:
    """The host of ``url`` as budgets key it (``hosts.host_key``: lower case, no trailing dot,
    an IPv6 address in brackets)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return f"[{host}]" if ":" in host else host


class _FreeTicket:
    """A request to a host the store holds nothing for: a 429/503 may make it cool."""

    __slots__ = ("_gate", "_host", "_label")

    def __init__(self, gate: HostGate, host: str, label: str | None) -> None:
        self._gate, self._host, self._label = gate, host, label

    async def throttled(self, retry_after_s: float | None) -> None:
        if retry_after_s is not None:
            await self._gate.throttled(self._host, self._label, retry_after_s, Admission(None, 0))

    def close(self) -> None:
        return None


class _BudgetTicket:
    """A request the store admitted to a budget: it may hold a slot until it closes."""

    __slots__ = ("_gate", "admission", "is_closed", "is_throttled", "pair", "slot")

    def __init__(
        self, gate: HostGate, host: str, label: str | None, slot: str, admission: Admission
    ) -> None:
        self._gate = gate
        self.pair: Pair = (host, label)
        self.slot = slot
        self.admission = admission
        self.is_throttled = False
        self.is_closed = False

    async def throttled(self, retry_after_s: float | None) -> None:
        self.is_throttled = True
        await self._gate.throttled(*self.pair, retry_after_s, self.admission)

    def close(self) -> None:
        if not self.is_closed:
            self.is_closed = True
            self._gate.left(self)
