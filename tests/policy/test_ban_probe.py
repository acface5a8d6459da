"""The prober's two pure decisions on a FakeClock: which banned resources are due a probe (the
ban ends within the horizon, or is over), and what a failed probe does (banned from now for the
next, doubled, ban time up to the cap, one ban more)."""

from __future__ import annotations

from dataclasses import replace

from hauler.clock import FakeClock
from hauler.policy.ban import BanRules, after_probe, ban_duration_s, banned_again, probe_due
from hauler.resources import Counters, Resource, ResourceKind, ResourceSpec, ResourceState

RULES = BanRules()
HORIZON_S = 60.0


def banned(until: float, bans: int = 1) -> Resource:
    spec = ResourceSpec(ResourceKind.PROXY, "http://p1.test:8080")
    return Resource("p1", spec, ResourceState.BANNED, until, Counters(uses=3, bans=bans))


def test_a_ban_is_due_a_probe_from_the_horizon_before_its_end_on() -> None:
    clock = FakeClock()
    proxy = banned(until=clock.now() + 3600)
    assert not probe_due(proxy, clock.now(), HORIZON_S)
    clock.advance(3600 - HORIZON_S - 1)
    assert not probe_due(proxy, clock.now(), HORIZON_S)
    clock.advance(1)
    assert probe_due(proxy, clock.now(), HORIZON_S)  # ends exactly at the horizon
    clock.advance(HORIZON_S + 600)
    assert probe_due(proxy, clock.now(), HORIZON_S)  # over, not restored by a lend yet


def test_only_banned_resources_are_due_a_probe() -> None:
    clock = FakeClock()
    soon = clock.now() + 10
    for state in (ResourceState.ACTIVE, ResourceState.RESTING, ResourceState.DISABLED):
        resource = replace(banned(soon), state=state)
        assert not probe_due(resource, clock.now(), HORIZON_S)


def test_a_failed_probe_doubles_the_ban_from_now_and_counts_it() -> None:
    clock = FakeClock()
    proxy = banned(until=clock.now() + 30, bans=1)  # its first ban, 1 h, ends in 30 s
    again = banned_again(proxy, RULES, clock.now())
    assert again.state is ResourceState.BANNED
    assert again.until == clock.now() + 7200 and again.counters.bans == 2
    assert again.counters.uses == 3 and again.updated_at == clock.now()
    clock.advance(7200 - 20)
    third = banned_again(again, RULES, clock.now())
    assert third.until == clock.now() + 4 * 3600 and third.counters.bans == 3


def test_the_ban_after_a_failed_probe_stops_at_the_cap() -> None:
    clock = FakeClock()
    lengths = []
    proxy = banned(until=clock.now(), bans=0)
    for _ in range(8):
        proxy = banned_again(proxy, RULES, clock.now())
        assert proxy.until is not None
        lengths.append(proxy.until - clock.now())
        clock.advance(lengths[-1])
    hours = [length / 3600 for length in lengths]
    assert hours == [1, 2, 4, 8, 16, 24, 24, 24]
    assert proxy.counters.bans == 8
    assert ban_duration_s(proxy.counters.bans, RULES) == RULES.ban_cap_s


def test_after_probe_bans_again_as_the_prober_does() -> None:
    clock = FakeClock()
    proxy = banned(until=clock.now(), bans=2)
    assert after_probe(proxy, False, RULES, clock.now()) == banned_again(proxy, RULES, clock.now())
