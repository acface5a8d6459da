"""The ban policy of the proxy and account pools, pure: what one use of a resource does to its
counters and its state (active, resting, banned), what evidence to keep for the next use, when
a resting or banned resource comes back, and how a health probe's outcome is taken.

Who is to blame for a bannable answer (``bot_check``, ``bannable``): a request goes through a
proxy with an account, and a bot wall may be either's fault. The account is the first suspect,
the proxy the last, and neither is banned on one answer that the other explains:

- an ACCOUNT is banned when its bannable failures within the window came through
  ``account_distinct_proxies`` different proxies (2: the same refusal from two egress IPs is
  the account's), or at once when it went through no proxy (nothing else to blame). A single
  refusal through one proxy may be that proxy's; banning every account a bot-walled proxy
  served would burn the pool the way the issue warns about, the other way round;
- a PROXY is banned when its bannable failures within the window came with
  ``proxy_distinct_accounts`` different accounts (3), or when the proxy itself failed (could
  not connect, 407/502/503 of its own: ``Use.is_proxy_fault``) on ``proxy_fault_streak`` uses in
  a row (3). A failure with no account counts as an account of its own (only the proxy is there
  to blame). One flagged account therefore never bans a good proxy: it is one account.

A ban lasts ``ban_base_s * 2**bans`` (the bans before it), capped at ``ban_cap_s``: 1 h, 2 h,
4 h … 24 h. An account rests ``rest_s`` after ``account_rest_uses`` uses or
``account_rest_after_s`` of use (counted from its first use since it became active). A resource
whose time is over comes back when next picked (``restore``); a banned one, when a probe URL is
configured, only after a probe through it succeeds (``probe_needed``, ``after_probe``); a
prober that checks ahead of the ban's end asks ``probe_due`` and bans a failed one again with
``banned_again``.

The caller keeps each resource's ``history`` (oldest first, in the order the uses ended) and
stores ``Verdict.history`` after each use: only what the window and the streak need, so it stays
small (at most ``proxy_fault_streak - 1`` + ``max(distinct)`` uses) however busy the proxy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from hauler.errors import ErrorClass
from hauler.resources import Counters, Resource, ResourceKind, ResourceState, Use

BANNABLE_CLASSES = frozenset({ErrorClass.BOT_CHECK.value, ErrorClass.BANNABLE.value})
# The weight of the newest latency in the average: a proxy that turns slow shows within ~3 uses.
LATENCY_ALPHA = 0.3


@dataclass(frozen=True, slots=True)
class BanRules:
    """The thresholds of the ban policy (``[pools]`` in the config), with the issue's defaults.

    ``account_distinct_proxies`` is ours: how many different proxies an account must have been
    refused through within ``proxy_window_s`` before it is banned (1 bans it at the first
    refusal)."""

    proxy_distinct_accounts: int = 3
    proxy_window_s: float = 600.0
    proxy_fault_streak: int = 3
    account_rest_uses: int = 50
    account_rest_after_s: float = 1800.0
    rest_s: float = 900.0
    ban_base_s: float = 3600.0
    ban_cap_s: float = 86400.0
    account_distinct_proxies: int = 2

    def __post_init__(self) -> None:
        if min(self.proxy_distinct_accounts, self.proxy_fault_streak) < 1:
            raise ValueError("ban thresholds count at least one use")
        if min(self.account_distinct_proxies, self.account_rest_uses) < 1:
            raise ValueError("account thresholds count at least one use")
        if min(self.proxy_window_s, self.rest_s, self.ban_base_s, self.ban_cap_s) < 0:
            raise ValueError("ban and rest times must not be negative")


class Action(StrEnum):
    """What a use did to the resource's state."""

    KEEP = "keep"  # state unchanged (counters still move)
    REST = "rest"  # the account rests until ``Verdict.until``
    BAN = "ban"  # banned until ``Verdict.until``


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of ``decide``: the resource's new state, ``until`` and counters, why it
    changed (``reason``), and the history to store for its next use."""

    action: Action
    state: ResourceState
    until: float | None
    counters: Counters
    history: tuple[Use, ...]
    reason: str | None = None

    @property
    def is_ban(self) -> bool:
        """True when this use banned the resource."""
        return self.action is Action.BAN

    def applied_to(self, resource: Resource, now: float) -> Resource:
        """``resource`` with this verdict's state, until and counters."""
        return Resource(
            resource.id,
            resource.spec,
            self.state,
            self.until,
            self.counters,
            resource.created_at,
            now,
        )


def is_bannable(use: Use) -> bool:
    """True when the use failed with a class that rotates a resource (a bot wall, a refusal)."""
    return use.error_class in BANNABLE_CLASSES


def ban_duration_s(bans: int, rules: BanRules) -> float:
    """How long ban number ``bans + 1`` lasts: the base doubled per earlier ban, capped."""
    if bans >= 64:  # far past any cap; spares computing a float beyond range
        return rules.ban_cap_s
    return min(rules.ban_cap_s, rules.ban_base_s * 2.0**bans)


def decide(
    resource: Resource, use: Use, history: Sequence[Use], rules: BanRules, now: float
) -> Verdict:
    """What ``use`` (just ended, at ``now``) does to ``resource``, given its kept ``history``.

    A use that ends while the resource is no longer active (another worker's verdict banned or
    rested it while this one was in flight) is counted but judged no further: the ban in force
    is not doubled by the in-flight answers of the same cause."""
    counters = count_use(resource.counters, use)
    seen = (*history, use)
    if resource.state is not ResourceState.ACTIVE:
        kept = history_to_keep(seen, rules, now)
        return Verdict(Action.KEEP, resource.state, resource.until, counters, kept)
    reason = ban_reason(resource.spec.kind, seen, rules, now)
    if reason is not None:
        return _ban(counters, rules, now, reason)
    kept = history_to_keep(seen, rules, now)
    if resource.spec.kind is ResourceKind.ACCOUNT and is_tired(counters, rules, now):
        until = now + rules.rest_s
        return Verdict(Action.REST, ResourceState.RESTING, until, _fresh(counters), kept, "rest")
    return Verdict(Action.KEEP, ResourceState.ACTIVE, None, counters, kept)


def count_use(counters: Counters, use: Use) -> Counters:
    """The counters after one more use: outcome, last error, latency EWMA (alpha 0.3, over the
    uses that report a latency) and the uses toward a rest (a use the proxy failed by itself
    never reached the site, so it does not tire the account)."""
    failures = counters.failures
    if use.error_class is not None:
        failures = {**failures, use.error_class: failures.get(use.error_class, 0) + 1}
    reached_site = not use.is_proxy_fault
    active_since = counters.active_since
    if active_since is None and reached_site:
        active_since = use.at
    # Built field by field, not with dataclasses.replace: this runs on every use of the fleet.
    return Counters(
        uses=counters.uses + 1,
        successes=counters.successes + (1 if use.is_success else 0),
        failures=failures,
        last_error=use.error_class if use.error_class is not None else counters.last_error,
        latency_s=_ewma(counters.latency_s, use.latency_s),
        in_use=counters.in_use,
        bans=counters.bans,
        uses_since_rest=counters.uses_since_rest + (1 if reached_site else 0),
        active_since=active_since,
    )


def _ewma(average: float | None, sample: float | None) -> float | None:
    if sample is None:
        return average
    if average is None:
        return sample
    return LATENCY_ALPHA * sample + (1 - LATENCY_ALPHA) * average


def ban_reason(kind: ResourceKind, seen: Sequence[Use], rules: BanRules, now: float) -> str | None:
    """Why the last use of ``seen`` (the history with it) bans a resource of ``kind``, or None."""
    use = seen[-1]
    if kind is ResourceKind.PROXY:
        streak = rules.proxy_fault_streak
        if fault_streak(seen, limit=streak) >= streak:
            return f"the proxy failed by itself on {streak} uses in a row"
        if not is_bannable(use):
            return None
        accounts = distinct_partners(seen, rules.proxy_window_s, now)
        if accounts >= rules.proxy_distinct_accounts:
            return f"refused with {accounts} different accounts within {rules.proxy_window_s:g} s"
        return None
    if not is_bannable(use):
        return None
    if use.partner is None:
        return f"refused ({use.error_class}) with no proxy to blame"
    proxies = distinct_partners(seen, rules.proxy_window_s, now)
    if proxies >= rules.account_distinct_proxies:
        return f"refused through {proxies} different proxies within {rules.proxy_window_s:g} s"
    return None


def fault_streak(seen: Sequence[Use], *, limit: int) -> int:
    """How many of the last uses in a row the proxy failed by itself, counting up to ``limit``
    (the kept history holds no more than the streak needs)."""
    count = 0
    for use in reversed(seen):
        if not use.is_proxy_fault or count >= limit:
            break
        count += 1
    return count


def distinct_partners(seen: Sequence[Use], window_s: float, now: float) -> int:
    """How many different partners the bannable failures within ``window_s`` of ``now`` came
    with (a failure with no partner counts as one of its own)."""
    return len(_latest_by_partner(seen, window_s, now, limit=None))


def _latest_by_partner(
    seen: Sequence[Use], window_s: float, now: float, limit: int | None
) -> dict[str, int]:
    """partner -> the index of its latest bannable failure within the window, newest partners
    first, at most ``limit`` of them."""
    latest: dict[str, int] = {}
    for index in range(len(seen) - 1, -1, -1):
        if limit is not None and len(latest) >= limit:
            break
        use = seen[index]
        if not is_bannable(use) or now - use.at > window_s:
            continue
        key = use.partner if use.partner is not None else f"\0anonymous:{index}"
        latest.setdefault(key, index)
    return latest


def history_to_keep(history: Sequence[Use], rules: BanRules, now: float) -> tuple[Use, ...]:
    """The part of ``history`` (oldest first) the next decision can need, in its order: its last
    ``proxy_fault_streak - 1`` uses, whatever their outcome (with the next use, the streak is
    counted over them and no further), and the latest bannable failure of each of the most
    recent partners within the window, as many as the larger distinct threshold (older
    partners expire first, so the ones dropped never change a count the rules look at)."""
    start = max(0, len(history) - (rules.proxy_fault_streak - 1))
    partners = max(rules.proxy_distinct_accounts, rules.account_distinct_proxies)
    latest = _latest_by_partner(history, rules.proxy_window_s, now, limit=partners)
    older = sorted(index for index in latest.values() if index < start)
    return (*(history[index] for index in older), *history[start:])


def is_tired(counters: Counters, rules: BanRules, now: float) -> bool:
    """True when an account has been used enough to rest: uses or time since it became active."""
    if counters.uses_since_rest >= rules.account_rest_uses:
        return True
    since = counters.active_since
    return since is not None and now - since >= rules.account_rest_after_s


def _fresh(counters: Counters) -> Counters:
    """Counters with the use since the last rest forgotten (a rest or a ban starts it over)."""
    return replace(counters, uses_since_rest=0, active_since=None)


def _ban(counters: Counters, rules: BanRules, now: float, reason: str) -> Verdict:
    until = now + ban_duration_s(counters.bans, rules)
    banned = replace(_fresh(counters), bans=counters.bans + 1)
    # The evidence is spent: back from the ban, the resource starts with a clean window.
    return Verdict(Action.BAN, ResourceState.BANNED, until, banned, (), reason)


def restore(resource: Resource, now: float) -> Resource:
    """``resource`` made active again when its rest or ban is over (else unchanged): what the
    pool does when it next picks it. With a probe URL, ask ``probe_needed`` first."""
    if resource.state not in (ResourceState.RESTING, ResourceState.BANNED):
        return resource
    if resource.until is None or resource.until > now:
        return resource
    return replace(
        resource,
        state=ResourceState.ACTIVE,
        until=None,
        counters=_fresh(resource.counters),
        updated_at=now,
    )


def probe_needed(resource: Resource, now: float) -> bool:
    """True when a probe must pass before ``resource`` comes back: it is banned and its ban is
    over (call this only when a probe URL is configured; without one, ``restore`` it)."""
    return (
        resource.state is ResourceState.BANNED
        and resource.until is not None
        and resource.until <= now
    )


def after_probe(resource: Resource, is_ok: bool, rules: BanRules, now: float) -> Resource:
    """``resource`` after the probe ``probe_needed`` asked for: active when it passed, banned
    again for the next (doubled) ban time when it failed. Unchanged when no probe was due."""
    if not probe_needed(resource, now):
        return resource
    if is_ok:
        return restore(resource, now)
    return banned_again(resource, rules, now)


def probe_due(resource: Resource, now: float, horizon_s: float) -> bool:
    """True when a prober should check ``resource`` now: it is banned and its ban ends within
    ``horizon_s`` of ``now`` or is already over (no lend has restored it yet). Probing ahead of
    the end lets a broken proxy be banned again before any job is lent it."""
    return (
        resource.state is ResourceState.BANNED
        and resource.until is not None
        and resource.until <= now + horizon_s
    )


def banned_again(resource: Resource, rules: BanRules, now: float) -> Resource:
    """``resource`` after a failed probe: banned from ``now`` for the next ban's length (the
    last one doubled, capped), its ban count one more."""
    counters = resource.counters
    return replace(
        resource,
        state=ResourceState.BANNED,
        until=now + ban_duration_s(counters.bans, rules),
        counters=replace(counters, bans=counters.bans + 1),
        updated_at=now,
    )
