"""``PoolLender``: proxies and accounts lent from the store's pools to one run of a job. Each
is chosen in the store atomically by the configured strategy (``policy.selection``) and given
back with how the run ended, which the ban policy (``policy.ban``) turns into the resource's
new counters and state for the whole fleet. A proxy and an account that last succeeded for a
site are asked for again (sticky) while they stay usable. A job may pin them (``JobSpec.pools``):
proxies of one region, one account by name or id; a pinned pool with nothing usable makes the
job wait for it (``NoResource``), never lends it another. The pipeline's acquire stage
(``pipeline.acquire.PooledResources``) lends through it. A worker's lender lends under the
worker's name (``holder``), so that what a killed worker held is given back by the others
(``pools.holds``).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from hauler.clock import Clock, SystemClock
from hauler.cookies import cookie_header, parse_cookies
from hauler.errors import ErrorClass, HaulerError, NoResource, ProxyFailed
from hauler.models import PoolPins
from hauler.policy import ban, selection
from hauler.resources import Resource, ResourceKind, ResourceState, Strategy, Use
from hauler.store.base import Decider, ResourcePools

_log = logging.getLogger(__name__)
# How many resources a worker remembers as good for one site (its concurrent lanes, at most).
STICKY_PER_SITE = 64
# How often a lender lists the pools again: resources added by `hauler proxy add` are used,
# and new or reset ones tried out, from then on.
VIEW_S = 2.0
# Lends of a resource before lanes may pass it over for the ones they stick to (the proxy
# fault streak that bans a broken proxy is 3).
EXPLORE_USES = 3
# How long a job waits for a pinned region or account the pools do not hold: the user may add
# it meanwhile.
PIN_MISSING_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class PoolRules:
    """How the pools are used: the strategy, the ban thresholds, and at most how many jobs
    share one proxy or account at once (None: no limit)."""

    strategy: Strategy = Strategy.LEAST_CONNECTIONS
    bans: ban.BanRules = field(default_factory=ban.BanRules)
    max_in_use: int | None = None


@dataclass(frozen=True, slots=True)
class Lent:
    """What one run holds: its proxy and account (either None when that pool is empty), and
    the headers the account sends to the run's URL."""

    proxy: Resource | None
    account: Resource | None
    headers: Mapping[str, str]


class PoolLender:
    """Lends from ``pools`` (a store with the ``ResourcePools`` role), every lend and give back
    under ``holder`` (the store tracks what each holder holds; None: untracked)."""

    def __init__(
        self,
        pools: ResourcePools,
        rules: PoolRules | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        holder: str | None = None,
    ) -> None:
        self._pools = pools
        # Passed only when set: a holderless lender calls the store as it always did.
        self._holder: dict[str, str] = {} if holder is None else {"holder": holder}
        self._rules = rules or PoolRules()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._cursors: Counter[ResourceKind] = Counter()
        # (kind, site) → the resources that last served it well, the latest first. A run asks
        # for the first one no other run of this worker holds: each concurrent lane keeps its
        # own proxy and account while they keep succeeding.
        self._good: dict[tuple[ResourceKind, str], deque[str]] = {}
        self._held: Counter[str] = Counter()
        # The pools as last listed, and when (monotonic), read again every VIEW_S: whether
        # they hold anything (a worker whose store has none does not ask twice a job), and
        # whether a resource is still to be tried out (then the chooser lends, else the store's
        # own ``lend_by``: one call that reads nothing back).
        self._view: tuple[list[Resource], float] | None = None

    async def lend(self, url: str, site: str, pins: PoolPins | None = None) -> Lent:
        """A proxy and an account for one run fetching ``url`` from ``site``, only those
        ``pins`` allows when given. ``NoResource`` (the job waits) when a pool has resources but
        none usable now, or when a pin matches none of them."""
        proxy_pin, account_pin = (
            _pin_of(ResourceKind.PROXY, pins),
            _pin_of(ResourceKind.ACCOUNT, pins),
        )
        if proxy_pin is None and account_pin is None and await self._pools_are_empty():
            return Lent(None, None, {})
        account = await self._lend(ResourceKind.ACCOUNT, site, pin=account_pin)
        # An account a site refused goes through another proxy next: refused through two, it
        # is the account (banned), not the proxy it happened to use.
        avoid = await self._refused_via(account) if account else frozenset()
        try:
            proxy = await self._lend(ResourceKind.PROXY, site, avoid=avoid, pin=proxy_pin)
        except BaseException:
            await self.give_back(Lent(None, account, {}), site, None, None, is_counted=False)
            raise
        headers = account_headers(account, url, self._clock.now()) if account else {}
        return Lent(proxy, account, headers)

    async def _refused_via(self, account: Resource) -> frozenset[str]:
        """The proxies a site refused ``account`` through lately (from its history in the
        store, whichever worker saw it); read only for an account ever refused so."""
        failures = account.counters.failures
        if not any(failures.get(name, 0) for name in ban.BANNABLE_CLASSES):
            return frozenset()
        uses = await self._pools.resource_uses(account.id)
        return frozenset(
            u.partner for u in uses if u.error_class in ban.BANNABLE_CLASSES and u.partner
        )

    async def _listed(self) -> list[Resource]:
        now = self._clock.monotonic()
        if self._view is None or now - self._view[1] >= VIEW_S:
            self._view = (await self._pools.list_resources(), now)
        return self._view[0]

    async def _pools_are_empty(self) -> bool:
        return not await self._listed()

    async def _is_settled(self, kind: ResourceKind, pin: _Pin | None) -> bool:
        """Every usable resource of ``kind`` (that ``pin`` admits) has been tried out (as last
        listed)."""
        now = self._clock.now()
        return not any(
            r.spec.kind is kind
            and (pin is None or pin.admits(r))
            and r.is_usable(now)
            and _judged_uses(r) < EXPLORE_USES
            for r in await self._listed()
        )

    async def _lend(
        self,
        kind: ResourceKind,
        site: str,
        avoid: frozenset[str] = frozenset(),
        pin: _Pin | None = None,
    ) -> Resource | None:
        """One resource of ``kind`` for ``site`` (not ``avoid`` while another will do, only
        one ``pin`` admits); None when the pool is empty (and nothing is pinned);
        ``NoResource`` (the job waits) when none is usable now."""
        if pin is not None and pin.account is not None:
            # One account asked for by name: nothing to explore, nothing to stick to.
            return await self._choose(kind, site, avoid, pin, sticky=None, explores=False)
        if pin is None and not any(r.spec.kind is kind for r in await self._listed()):
            return None  # none of the kind, as last listed: no store call for it
        good = self._good.get((kind, site), ())
        sticky = next((i for i in good if not self._held[i] and i not in avoid), None)
        if not avoid and await self._is_settled(kind, pin):
            lent = await self._pools.lend_by(
                kind,
                self._rules.strategy,
                site=site,
                region=pin.region if pin is not None else None,
                sticky_id=sticky,
                max_in_use=self._rules.max_in_use,
                rng_value=self._rng.random(),
                **self._holder,
            )
            if lent is not None:
                self._held[lent.id] += 1
                return lent
            # None eligible: the chooser's path below finds out why, and when one is back.
        return await self._choose(kind, site, avoid, pin, sticky=sticky, explores=True)

    async def _choose(
        self,
        kind: ResourceKind,
        site: str,
        avoid: frozenset[str],
        pin: _Pin | None,
        *,
        sticky: str | None,
        explores: bool,
    ) -> Resource | None:
        """``_lend`` by the store's ``lend`` with a chooser of ours (see ``_lend``)."""
        self._cursors[kind] += 1
        cursor = self._cursors[kind]
        region = pin.region if pin is not None else None
        seen: list[Sequence[Resource]] = []

        def pick(candidates: Sequence[Resource], now: float) -> Resource | None:
            if pin is not None:
                candidates = [c for c in candidates if pin.admits(c)]
            seen.append(candidates)
            usable = [c for c in candidates if c.is_usable(now)]
            others = [c for c in usable if c.id not in avoid] or usable
            # A resource new to the fleet (or just reset) is tried a few times before any lane
            # sticks to the ones it knows: a broken proxy is found out, not just left aside.
            fresh = [c for c in others if _judged_uses(c) < EXPLORE_USES] if explores else []
            for pool, keep in ((fresh, None), (others, sticky)):
                chosen = selection.choose(
                    pool,
                    self._rules.strategy,
                    now=now,
                    cursor=cursor,
                    rng=self._rng,
                    sticky_id=keep,
                    site=site,
                    region=region,
                    max_in_use=self._rules.max_in_use,
                )
                if chosen is not None:
                    return ban.restore(chosen, now)
            return None

        lent = await self._pools.lend(kind, pick, **self._holder)
        if lent is not None:
            self._held[lent.id] += 1
            return lent
        if seen and seen[-1]:
            raise self._none_usable(kind, site, pin, seen[-1])
        if pin is not None:
            raise NoResource(
                f"no {kind.value} {pin.label} is in the pool (add one, or drop the pin);"
                f" the job waits {PIN_MISSING_WAIT_S:.0f} s",
                retry_after_s=PIN_MISSING_WAIT_S,
            )
        return None

    def _none_usable(
        self, kind: ResourceKind, site: str, pin: _Pin | None, seen: Sequence[Resource]
    ) -> NoResource:
        """Why none of ``seen`` was lent, and when the first of them comes back."""
        now = self._clock.now()
        back_at = selection.first_back_at(seen, now)
        wait_s = max(1.0, (back_at or now + 60.0) - now)
        which = kind.value if pin is None else f"{kind.value} {pin.label}"
        return NoResource(
            f"no {which} usable for {site} now (all resting, banned, disabled or busy);"
            f" the first comes back in {wait_s:.0f} s",
            retry_after_s=wait_s,
        )

    async def give_back(
        self,
        lent: Lent,
        site: str,
        error: HaulerError | None,
        latency_s: float | None,
        *,
        is_counted: bool = True,
    ) -> None:
        """Return what ``lent`` holds after a run that ended with ``error`` (None: success)
        in ``latency_s``; ``is_counted`` False (a cancelled run) frees it, judging nothing."""
        now = self._clock.now()
        error_class = None if error is None else str(error.error_class)
        is_proxy_fault = isinstance(error, ProxyFailed)
        pairs = ((lent.proxy, lent.account), (lent.account, lent.proxy))
        for resource, partner in pairs:
            if resource is None:
                continue
            use = Use(
                resource.id,
                now,
                error_class,
                latency_s if error is None else None,
                is_proxy_fault,
                partner.id if partner else None,
            )
            self._held[resource.id] -= 1
            decider = self._decider(now, is_counted)
            given = await self._pools.give_back(resource.id, use, decider, **self._holder)
            self._remember(resource.spec.kind, site, resource.id, given, error)

    def _decider(self, now: float, is_counted: bool) -> Decider:
        rules = self._rules.bans

        def decide(resource: Resource, seen: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
            if not is_counted:  # a cancelled run: the resource is free again, nothing judged
                return resource, seen[:-1]
            # The store counted the lend as a use already; the policy counts the use it judges.
            lent = resource.counters
            judged = replace(resource, counters=replace(lent, uses=max(0, lent.uses - 1)))
            verdict = ban.decide(judged, seen[-1], seen[:-1], rules, now)
            if verdict.is_ban:
                _log.warning(
                    "%s %s banned: %s", resource.spec.kind.value, resource.id, verdict.reason
                )
            return verdict.applied_to(resource, now), verdict.history

        return decide

    def _remember(
        self,
        kind: ResourceKind,
        site: str,
        resource_id: str,
        given: Resource | None,
        error: HaulerError | None,
    ) -> None:
        """A success puts the resource first for its site; a failure drops it."""
        good = self._good.setdefault((kind, site), deque(maxlen=STICKY_PER_SITE))
        with contextlib.suppress(ValueError):
            good.remove(resource_id)
        if given is not None and error is None and given.state is ResourceState.ACTIVE:
            good.appendleft(resource_id)


@dataclass(frozen=True, slots=True)
class _Pin:
    """What a job's pins leave of one pool: proxies of ``region`` (case ignored), or the one
    account named ``account`` (its name or its id); ``label`` names it in messages."""

    label: str
    region: str | None = None
    account: str | None = None

    def admits(self, resource: Resource) -> bool:
        """``resource`` may serve the job."""
        if self.account is not None:
            return self.account in (resource.id, resource.spec.name)
        return (resource.spec.region or "").lower() == (self.region or "").lower()


def _pin_of(kind: ResourceKind, pins: PoolPins | None) -> _Pin | None:
    """The pin ``pins`` sets on the pool of ``kind``, or None."""
    if pins is None:
        return None
    if kind is ResourceKind.PROXY and pins.region is not None:
        return _Pin(f"in region {pins.region}", region=pins.region)
    if kind is ResourceKind.ACCOUNT and pins.account is not None:
        return _Pin(pins.account, account=pins.account)
    return None


def _judged_uses(resource: Resource) -> int:
    """How often the resource has been put to the test: an account only by the uses that
    reached the site (a proxy that failed by itself said nothing of the account)."""
    counters = resource.counters
    if resource.spec.kind is ResourceKind.PROXY:
        return counters.uses
    return counters.uses - counters.failures.get(ErrorClass.PROXY.value, 0)


def account_headers(account: Resource, url: str, now: float) -> Mapping[str, str]:
    """The headers an account sends to ``url``: its own, its cookies that match the URL as one
    ``Cookie`` header, its token as ``Authorization: Bearer``."""
    spec = account.spec
    headers = dict(spec.headers)
    if spec.cookies:
        cookies = parse_cookies(spec.cookies.splitlines(), f"account {account.id}")
        header = cookie_header(cookies, url, now)
        if header:
            headers["Cookie"] = header
    if spec.token:
        headers["Authorization"] = f"Bearer {spec.token}"
    return headers
