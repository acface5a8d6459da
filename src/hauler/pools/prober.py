"""The health probe of banned proxies (``[pools] probe_url``): a banned proxy comes back at the
end of its ban only if ``probe_url`` answers through it (2xx/3xx); otherwise it is banned again
for the next, doubled, ban time (``policy.ban.banned_again``), its ban count one more.

Every worker runs a ``ProxyProber`` beside its lanes while ``probe_url`` is set (``probing``).
Every ``probe_every_s`` (±20 %, so that a fleet started at once does not probe in step) it lists
the proxies and probes each banned one whose ban ends within two rounds, or is already over
(no lend has restored it yet): the probe lands before the ban's end, so a broken proxy is
banned again before a job is lent it. A proxy that passed keeps its ban as it is: the store's
lends restore it at ``until``, as without a probe; this worker does not probe it again for the
same ban.

The fleet probes a proxy once per failure, not once per worker: the ban is written by
``give_back`` with a decider that compares ``until`` with the one the probe was decided on, so
a worker whose probe ends after another's has banned the proxy again (or an operator unbanned
it) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from hauler.clock import Clock, SystemClock
from hauler.config import PoolSettings, TransferSettings
from hauler.errors import ErrorClass, HaulerError
from hauler.net import Sessions, probe
from hauler.policy.ban import BanRules, banned_again, probe_due
from hauler.pools.background import in_background
from hauler.redact import redact_url
from hauler.resources import Resource, ResourceKind, ResourceState, Use
from hauler.store.base import Decider, ResourcePools

_log = logging.getLogger(__name__)
# A round probes the proxies whose ban ends within this many rounds: with the ±20 % jitter,
# every ban gets at least one probe before it ends.
HORIZON_ROUNDS = 2.0
JITTER = 0.2
# Probes in flight at once in one round (each may take probe_timeout_s).
PROBES_AT_ONCE = 16


class ProbeVerdict(StrEnum):
    """What one probe did."""

    PASSED = "passed"  # answered 2xx/3xx: back at the ban's end
    BANNED_AGAIN = "banned_again"  # failed: banned again, doubled
    MOVED = "moved"  # failed, but its ban changed meanwhile (another worker, an operator)


@dataclass(frozen=True, slots=True)
class Probed:
    """One probe's result: the proxy, the verdict, the status it answered (None: no answer),
    why it failed, and its ``until`` as this worker left it."""

    resource_id: str
    verdict: ProbeVerdict
    status: int | None
    reason: str | None
    until: float | None


# Called after every round with its results (the metrics, the tests).
OnRound = Callable[[Sequence[Probed]], None]


def _no_report(results: Sequence[Probed]) -> None:
    del results


def _ban_rules(settings: PoolSettings) -> BanRules:
    """The part of the ban policy a probe needs: how long the next ban lasts."""
    return BanRules(ban_base_s=settings.ban_base_s, ban_cap_s=settings.ban_cap_s)


def is_passing(status: int) -> bool:
    """True for an answer that shows the proxy works: 2xx or 3xx."""
    return 200 <= status < 400


class ProxyProber:
    """Probes the banned proxies of ``pools`` through ``probe_url`` (see the module)."""

    def __init__(
        self,
        pools: ResourcePools,
        settings: PoolSettings,
        clock: Clock | None = None,
        *,
        sessions: Sessions | None = None,
        rng: random.Random | None = None,
        on_round: OnRound = _no_report,
    ) -> None:
        if settings.probe_url is None:
            raise ValueError("a prober needs [pools] probe_url")
        self._pools = pools
        self._url = settings.probe_url
        self._every_s = settings.probe_every_s
        self._timeout_s = settings.probe_timeout_s
        self._rules = _ban_rules(settings)
        self._clock = clock or SystemClock()
        self._sessions = sessions or Sessions(TransferSettings())
        self._rng = rng or random.Random()
        self._on_round = on_round
        # id -> the ``until`` of the ban a probe passed: one passing probe per ban is enough.
        self._passed: dict[str, float] = {}
        self._gate = asyncio.Semaphore(PROBES_AT_ONCE)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every round until ``stop`` is set; a round the store fails is logged, and the
        next one tries again."""
        while not await self._clock.wait_for(stop, self._interval_s()):
            try:
                self._on_round(await self.probe_round())
            except* HaulerError as group:
                _log.warning("proxy probes skipped this round: %s", group.exceptions[0])

    async def probe_round(self) -> list[Probed]:
        """One round: probe the proxies that are due (see the module), in the order listed."""
        proxies = await self._pools.list_resources(ResourceKind.PROXY)
        due = [proxy for proxy in proxies if self._is_due(proxy)]
        self._forget_settled(proxies)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._probe_one(proxy)) for proxy in due]
        return [task.result() for task in tasks]

    async def aclose(self) -> None:
        """Close the probe's connections."""
        await self._sessions.close()

    def _interval_s(self) -> float:
        return self._every_s * (1.0 + self._rng.uniform(-JITTER, JITTER))

    def _is_due(self, proxy: Resource) -> bool:
        if not probe_due(proxy, self._clock.now(), HORIZON_ROUNDS * self._every_s):
            return False
        return self._passed.get(proxy.id) != proxy.until

    def _forget_settled(self, proxies: Sequence[Resource]) -> None:
        """Drop the passes of proxies no longer under that ban (back, banned anew, removed)."""
        current = {proxy.id: proxy.until for proxy in proxies}
        self._passed = {
            rid: until for rid, until in self._passed.items() if current.get(rid) == until
        }

    async def _probe_one(self, proxy: Resource) -> Probed:
        status, reason = await self._answer(proxy)
        if status is None or not is_passing(status):
            return await self._failed(proxy, status, reason or f"answered {status}")
        if proxy.until is not None:
            self._passed[proxy.id] = proxy.until
        _log.info(
            "proxy %s (%s) passed its probe (%d): back when its ban ends",
            proxy.id,
            redact_url(proxy.spec.name),
            status,
        )
        return Probed(proxy.id, ProbeVerdict.PASSED, status, None, proxy.until)

    async def _answer(self, proxy: Resource) -> tuple[int | None, str | None]:
        """The status ``probe_url`` answered through ``proxy``, or None and why none came."""
        async with self._gate:
            try:
                status = await probe(self._sessions, self._url, proxy.spec.name, self._timeout_s)
            except HaulerError as exc:
                return None, str(exc)
        return status, None

    async def _failed(self, proxy: Resource, status: int | None, reason: str) -> Probed:
        """Ban ``proxy`` again unless its ban moved since it was listed."""
        now = self._clock.now()
        is_ours: list[bool] = []
        use = Use(proxy.id, now, ErrorClass.PROXY.value, is_proxy_fault=True)
        decide = _reban_if_unmoved(proxy.until, self._rules, now, is_ours)
        stored = await self._pools.give_back(proxy.id, use, decide)
        until = stored.until if stored is not None else None
        verdict = ProbeVerdict.BANNED_AGAIN if is_ours and is_ours[-1] else ProbeVerdict.MOVED
        _log.info(
            "proxy %s (%s) failed its probe (%s): %s",
            proxy.id,
            redact_url(proxy.spec.name),
            reason,
            _failure_outcome(verdict, stored, now),
        )
        return Probed(proxy.id, verdict, status, reason, until)


def _reban_if_unmoved(
    seen_until: float | None, rules: BanRules, now: float, is_ours: list[bool]
) -> Decider:
    """A ``give_back`` decider that bans the proxy again only if it is still under the ban the
    probe was decided on (``until`` unchanged), recording in ``is_ours`` whether it did (the
    store may call it more than once: the last call is the one written). Either way the probe
    leaves no use in the history, and its ``in_use`` as it was."""

    def decide(resource: Resource, seen: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
        is_unmoved = resource.state is ResourceState.BANNED and resource.until == seen_until
        is_ours.append(is_unmoved)
        after = banned_again(resource, rules, now) if is_unmoved else resource
        # give_back takes one off in_use, for a lend the probe never made: add it back.
        counters = replace(after.counters, in_use=resource.counters.in_use + 1)
        return replace(after, counters=counters), seen[:-1]

    return decide


def _failure_outcome(verdict: ProbeVerdict, stored: Resource | None, now: float) -> str:
    if stored is None:
        return "it is no longer in the pool"
    if verdict is ProbeVerdict.MOVED:
        return f"its ban was changed meanwhile (now {stored.state.value}), left as it is"
    ban_s = (stored.until or now) - now
    return f"banned again for {ban_s:g} s (ban {stored.counters.bans})"


@contextlib.asynccontextmanager
async def probing(
    pools: ResourcePools,
    settings: PoolSettings,
    clock: Clock | None = None,
    *,
    rng: random.Random | None = None,
    on_round: OnRound = _no_report,
) -> AsyncIterator[ProxyProber | None]:
    """Run a ``ProxyProber`` in the background for the duration of the block, when the pools are
    enabled and ``probe_url`` is set (else yield None and run nothing); stopped and closed at
    the block's end."""
    if not settings.enabled or settings.probe_url is None:
        yield None
        return
    prober = ProxyProber(pools, settings, clock, rng=rng, on_round=on_round)
    try:
        async with in_background("hauler-proxy-prober", prober.run):
            yield prober
    finally:
        await prober.aclose()
