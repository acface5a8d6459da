"""The writes of ``ResourcePools`` that both backends make the same way: what a lend, a give
back, a state set or a reset stores, given what was read and what the caller's pure callable
returned. No I/O: ``sqlite_pools`` and ``redis_pools`` read, call these, and write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hauler.resources import Counters, Resource, ResourceKind, ResourceState, Use
from hauler.store.base import MAX_USE_HISTORY, Chooser, Decider

# The letter of a kind's ids: p1, p2 … for proxies, a1 … for accounts.
ID_LETTER = {ResourceKind.PROXY: "p", ResourceKind.ACCOUNT: "a"}


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
