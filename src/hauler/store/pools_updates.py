"""The writes of ``ResourcePools`` that both backends make the same way: what a lend, a give
back, a state set or a reset stores, given what was read and what the caller's pure callable
returned, and the keys that ``lend_by`` picks by on both backends (the same numbers in SQLite
columns and in Redis sorted sets). No I/O: ``sqlite_pools`` and ``redis_pools`` read, call
these, and write.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from hauler.resources import Counters, Resource, ResourceKind, ResourceState, Use
from hauler.store.base import MAX_USE_HISTORY, Chooser, Decider

# The letter of a kind's ids: p1, p2 … for proxies, a1 … for accounts.
ID_LETTER = {ResourceKind.PROXY: "p", ResourceKind.ACCOUNT: "a"}

# ``fastest`` compares scores (hauler.policy.selection.score, at most 1 / 0.01 = 100) in steps
# of 1/SCORE_STEPS, as the integer FAST_TOP - steps: smaller is faster, so that both backends
# keep it in an ascending index, and scores closer than a step are ties, taken in turn.
SCORE_STEPS = 10_000
FAST_TOP = 1_000_000
# The same as hauler.policy.selection's (the store may not import policy/).
UNKNOWN_LATENCY_S = 1.0
MIN_LATENCY_S = 0.01


def resource_id(kind: ResourceKind, number: int) -> str:
    """The id of the ``number``-th resource ever added to ``kind``."""
    return f"{ID_LETTER[kind]}{number}"


def kind_of_id(resource_id: str) -> ResourceKind | None:
    """The kind an id belongs to, or None for an id no store gives out."""
    for kind, letter in ID_LETTER.items():
        if resource_id.startswith(letter) and resource_id[1:].isdigit():
            return kind
    return None


def _kept(stored: Resource, returned: Resource, counters: Counters, now: float) -> Resource:
    """``returned`` with what the callable may not change taken from ``stored``."""
    return dataclasses.replace(
        returned, id=stored.id, spec=stored.spec, counters=counters,
        created_at=stored.created_at, updated_at=now,
    )  # fmt: skip


def lent(offered: Sequence[Resource], choose: Chooser, now: float) -> Resource | None:
    """What ``lend`` stores: the chosen resource with ``in_use + 1`` and ``uses + 1``, or None."""
    chosen = choose(offered, now)
    if chosen is None:
        return None
    stored = next((r for r in offered if r.id == chosen.id), None)
    if stored is None:
        raise ValueError(f"the chooser returned {chosen.id!r}, which was not offered")
    counters = dataclasses.replace(
        chosen.counters, in_use=chosen.counters.in_use + 1, uses=chosen.counters.uses + 1
    )
    return _kept(stored, chosen, counters, now)


def given_back(
    stored: Resource, history: Sequence[Use], use: Use, decide: Decider, now: float
) -> tuple[Resource, list[Use]]:
    """What ``give_back`` stores: the decided resource with ``in_use - 1`` (never below 0) and
    the newest ``MAX_USE_HISTORY`` uses of the decided history."""
    decided, kept = decide(stored, [*history, use])
    counters = dataclasses.replace(decided.counters, in_use=max(0, decided.counters.in_use - 1))
    return _kept(stored, decided, counters, now), list(kept)[-MAX_USE_HISTORY:]


def with_state(stored: Resource, state: ResourceState, until: float | None, now: float) -> Resource:
    """What ``set_resource_state`` stores. A ban or a rest needs its end time."""
    if state in (ResourceState.RESTING, ResourceState.BANNED) and until is None:
        raise ValueError(f"a {state.value} resource needs the time it comes back (until)")
    if state in (ResourceState.ACTIVE, ResourceState.DISABLED):
        until = None
    return dataclasses.replace(stored, state=state, until=until, updated_at=now)


def reset(stored: Resource, now: float) -> Resource:
    """What ``reset_resource`` stores: active, every counter zeroed."""
    return dataclasses.replace(
        stored, state=ResourceState.ACTIVE, until=None, counters=Counters(), updated_at=now
    )


def is_state_changed(before: Resource | None, after: Resource) -> bool:
    """True when a write changes what ``pools_version`` follows (state, until)."""
    return before is None or (before.state, before.until) != (after.state, after.until)


def fast_rank(counters: Counters) -> int:
    """The ``fastest`` key of a resource with these counters: smaller is faster. The Lua of
    ``pool_lend.lua`` computes it with the same double arithmetic."""
    latency = counters.latency_s if counters.latency_s is not None else UNKNOWN_LATENCY_S
    score = ((counters.successes + 1) / (counters.uses + 2)) / max(latency, MIN_LATENCY_S)
    return FAST_TOP - math.floor(score * SCORE_STEPS)


def normal_host(site: str) -> str:
    """A site as the filters compare it (as ``hauler.policy.selection`` does)."""
    return site.strip().lower().rstrip(".")


def site_suffixes(site: str | None) -> list[str]:
    """The names a resource tied to sites may list to serve ``site``: the host and every parent
    domain (``a.b.com``: ``a.b.com``, ``b.com``, ``com``); none for no site."""
    if site is None:
        return []
    host = normal_host(site)
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


def normal_region(region: str | None) -> str | None:
    """A region as the filters compare it (case does not matter; no region is None)."""
    return region.lower() if region else None


def restored(resource: Resource, now: float) -> Resource:
    """``resource`` made active when its rest or ban is over, with the use since its last rest
    forgotten (as ``hauler.policy.ban.restore``); else unchanged."""
    if resource.state not in (ResourceState.RESTING, ResourceState.BANNED):
        return resource
    if resource.until is None or resource.until > now:
        return resource
    counters = dataclasses.replace(resource.counters, uses_since_rest=0, active_since=None)
    return dataclasses.replace(resource, state=ResourceState.ACTIVE, until=None, counters=counters)


def lent_by(stored: Resource, now: float) -> Resource:
    """What ``lend_by`` stores for the resource it picked: restored if due, ``in_use + 1``,
    ``uses + 1``, ``updated_at`` now."""
    back = restored(stored, now)
    counters = dataclasses.replace(
        back.counters, in_use=back.counters.in_use + 1, uses=back.counters.uses + 1
    )
    return dataclasses.replace(back, counters=counters, updated_at=now)


def check_rng_value(rng_value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= rng_value < 1`` (the weighted draw)."""
    if not 0.0 <= rng_value < 1.0:
        raise ValueError(f"rng_value must be in [0, 1), not {rng_value!r}")


def keeping_in_use(decide: Decider) -> Decider:
    """``decide`` with one added to the ``in_use`` it returns, so that the give_back's one off
    (SQLite's ``given_back``, Redis's ``pool_give.lua``) stores it as decided; a give_back whose
    hold was released takes nothing off, and keeps the one."""

    def kept(resource: Resource, seen: Sequence[Use]) -> tuple[Resource, Sequence[Use]]:
        decided, history = decide(resource, seen)
        counters = dataclasses.replace(decided.counters, in_use=decided.counters.in_use + 1)
        return dataclasses.replace(decided, counters=counters), history

    return kept
