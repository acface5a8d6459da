"""The ban policy on a FakeClock: a refused account is banned when two proxies refused it (at
once with no proxy), never on one proxy's word; a proxy only with 3 different accounts within
10 minutes or 3 faults of its own in a row; bans double from 1 h to a 24 h cap; accounts rest
after 50 uses or 30 minutes; restore, probes, the counters, and the bounded history."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hauler.clock import FakeClock
from hauler.policy.ban import (
    Action,
    BanRules,
    Verdict,
    after_probe,
    ban_duration_s,
    decide,
    history_to_keep,
    probe_needed,
    restore,
)
from hauler.resources import Resource, ResourceKind, ResourceSpec, ResourceState, Use

RULES = BanRules()
Step = tuple[float, str | None, str | None, bool]  # delay, error class, partner, proxy fault


def proxy(rid: str = "p1") -> Resource:
    return Resource(rid, ResourceSpec(ResourceKind.PROXY, f"http://{rid}.test:8080"))


def account(rid: str = "a1") -> Resource:
    return Resource(rid, ResourceSpec(ResourceKind.ACCOUNT, rid))


class Tracker:
    """One resource and its kept history, fed uses the way a pool would."""

    def __init__(self, resource: Resource, clock: FakeClock, rules: BanRules = RULES) -> None:
        self.resource = resource
        self.history: tuple[Use, ...] = ()
        self.clock = clock
        self.rules = rules
        self.verdicts: list[Verdict] = []

    def use(self, error: str | None = None, partner: str | None = None, **kw: object) -> Verdict:
        now = self.clock.now()
        event = Use(self.resource.id, now, error, partner=partner, **kw)  # type: ignore[arg-type]
        verdict = decide(self.resource, event, self.history, self.rules, now)
        self.resource = verdict.applied_to(self.resource, now)
        self.history = verdict.history
        self.verdicts.append(verdict)
        return verdict


def test_an_account_refused_through_one_proxy_only_is_not_banned() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    for _ in range(5):
        assert acct.use("bot_check", partner="p-bad").action is Action.KEEP
        clock.advance(10)
    assert acct.resource.state is ResourceState.ACTIVE
    assert acct.resource.counters.failures == {"bot_check": 5}


def test_an_account_refused_through_two_proxies_is_banned_for_an_hour() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    acct.use("bot_check", partner="p1")
    clock.advance(60)
    verdict = acct.use("bannable", partner="p2")
    assert verdict.is_ban and verdict.state is ResourceState.BANNED
    assert verdict.until == clock.now() + 3600
    assert verdict.counters.bans == 1
    assert verdict.history == ()  # the evidence is spent
    assert "2 different proxies" in (verdict.reason or "")


def test_an_account_with_no_proxy_is_banned_at_its_first_refusal() -> None:
    clock = FakeClock()
    assert Tracker(account(), clock).use("bot_check", partner=None).is_ban


def test_account_distinct_proxies_one_is_the_literal_first_refusal_ban() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock, BanRules(account_distinct_proxies=1))
    assert acct.use("bot_check", partner="p1").is_ban


def test_other_failures_never_ban_an_account() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    for index, error in enumerate(["forbidden", "throttled", "connection", "not_found"] * 5):
        assert acct.use(error, partner=f"p{index}").action is Action.KEEP
    assert acct.resource.state is ResourceState.ACTIVE


def test_a_proxy_refused_with_three_different_accounts_within_ten_minutes_is_banned() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    assert prox.use("bot_check", partner="a1").action is Action.KEEP
    clock.advance(200)
    assert prox.use("bot_check", partner="a1").action is Action.KEEP  # the same account again
    clock.advance(200)
    assert prox.use("bot_check", partner="a2").action is Action.KEEP
    clock.advance(200)
    verdict = prox.use("bannable", partner="a3")
    assert verdict.is_ban and verdict.until == clock.now() + 3600
    assert "3 different accounts" in (verdict.reason or "")


def test_one_flagged_account_never_bans_a_proxy() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    for _ in range(100):
        prox.use("bot_check", partner="flagged")
        clock.advance(1)
    assert prox.resource.state is ResourceState.ACTIVE


def test_the_window_forgets_failures_older_than_ten_minutes() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    prox.use("bot_check", partner="a1")
    clock.advance(300)
    prox.use("bot_check", partner="a2")
    clock.advance(300.5)  # a1's failure is now 600.5 s old
    assert prox.use("bot_check", partner="a3").action is Action.KEEP
    clock.advance(299)  # a2 at 599.5 s, a3 at 299 s, a4 now: three within the window
    assert prox.use("bot_check", partner="a4").is_ban


def test_the_window_boundary_is_inclusive() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    prox.use("bot_check", partner="a1")
    clock.advance(300)
    prox.use("bot_check", partner="a2")
    clock.advance(300)  # a1 exactly 600 s old: still within 10 minutes
    assert prox.use("bot_check", partner="a3").is_ban


def test_successes_between_refusals_do_not_reset_the_window() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    for partner in ("a1", "a2", "a3"):
        verdict = prox.use("bot_check", partner=partner)
        for _ in range(3):
            prox.use(None, partner="a9", latency_s=0.2)
        clock.advance(10)
    assert verdict.is_ban


def test_failures_with_no_account_each_count_for_the_proxy() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    verdicts = [prox.use("bot_check", partner=None) for _ in range(3)]
    assert [v.action for v in verdicts] == [Action.KEEP, Action.KEEP, Action.BAN]


def test_three_proxy_faults_in_a_row_ban_the_proxy_and_a_success_breaks_the_streak() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    prox.use("connection", partner="a1", is_proxy_fault=True)
    prox.use("connection", partner="a2", is_proxy_fault=True)
    prox.use(None, partner="a3", latency_s=0.1)  # it works again: the streak starts over
    prox.use("connection", partner="a1", is_proxy_fault=True)
    assert prox.use("connection", partner="a1", is_proxy_fault=True).action is Action.KEEP
    verdict = prox.use("transient", partner="a1", is_proxy_fault=True)
    assert verdict.is_ban and "3 uses in a row" in (verdict.reason or "")


def test_an_origin_connection_failure_is_not_a_proxy_fault() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    for _ in range(10):
        prox.use("connection", partner="a1")
    assert prox.resource.state is ResourceState.ACTIVE


def test_a_proxy_fault_does_not_tire_the_account() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    acct.use("connection", partner="p1", is_proxy_fault=True)
    assert acct.resource.counters.uses == 1
    assert acct.resource.counters.uses_since_rest == 0
    assert acct.resource.counters.active_since is None


def test_ban_times_double_from_one_hour_to_a_24_hour_cap() -> None:
    hours = [ban_duration_s(bans, RULES) / 3600 for bans in range(8)]
    assert hours == [1, 2, 4, 8, 16, 24, 24, 24]
    assert ban_duration_s(10_000, RULES) == 86400


def test_each_new_ban_of_a_restored_account_doubles() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    lengths = []
    for _ in range(7):
        acct.use("bot_check", partner="p1")
        verdict = acct.use("bot_check", partner="p2")
        assert verdict.is_ban and verdict.until is not None
        lengths.append((verdict.until - clock.now()) / 3600)
        clock.advance(verdict.until - clock.now())
        acct.resource = restore(acct.resource, clock.now())
        assert acct.resource.state is ResourceState.ACTIVE
    assert lengths == [1, 2, 4, 8, 16, 24, 24]
    assert acct.resource.counters.bans == 7


def test_in_flight_refusals_of_a_banned_resource_do_not_extend_its_ban() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    acct.use("bot_check", partner="p1")
    banned = acct.use("bot_check", partner="p2")
    clock.advance(5)
    late = acct.use("bot_check", partner="p3")
    assert late.action is Action.KEEP
    assert (late.state, late.until) == (ResourceState.BANNED, banned.until)
    assert late.counters.bans == 1 and late.counters.failures == {"bot_check": 3}


def test_an_account_rests_after_fifty_uses_for_fifteen_minutes() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    actions = []
    for _ in range(50):
        actions.append(acct.use(None, partner="p1", latency_s=0.5).action)
        clock.advance(1)
    assert actions[:49] == [Action.KEEP] * 49 and actions[49] is Action.REST
    assert acct.resource.state is ResourceState.RESTING
    assert acct.resource.until == clock.now() - 1 + 900
    assert acct.resource.counters.uses_since_rest == 0
    assert not acct.resource.is_usable(clock.now() + 898)
    clock.advance(899)
    back = restore(acct.resource, clock.now())
    assert back.state is ResourceState.ACTIVE and back.until is None


def test_an_account_rests_after_thirty_minutes_of_use_counted_from_its_first_use() -> None:
    clock = FakeClock()
    acct = Tracker(account(), clock)
    clock.advance(5000)  # idle time before the first use does not count
    acct.use(None, partner="p1")
    first = clock.now()
    clock.advance(1799)
    assert acct.use(None, partner="p1").action is Action.KEEP
    clock.advance(1)
    verdict = acct.use(None, partner="p1")
    assert verdict.action is Action.REST and verdict.until == first + 1800 + 900


def test_proxies_never_rest() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    for _ in range(200):
        prox.use(None, partner="a1")
        clock.advance(30)
    assert prox.resource.state is ResourceState.ACTIVE
    assert prox.resource.counters.uses == 200


def test_counters_count_outcomes_and_average_latency_with_alpha_0_3() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    prox.use(None, partner="a1", latency_s=1.0)
    prox.use(None, partner="a1", latency_s=2.0)
    prox.use("throttled", partner="a1")
    prox.use("bot_check", partner="a2")
    counters = prox.resource.counters
    assert (counters.uses, counters.successes) == (4, 2)
    assert counters.failures == {"throttled": 1, "bot_check": 1}
    assert counters.last_error == "bot_check"
    assert counters.latency_s == pytest.approx(0.3 * 2.0 + 0.7 * 1.0)
    prox.use(None, partner="a1")
    assert prox.resource.counters.last_error == "bot_check"  # the last error, not the last use


def test_restore_leaves_a_resource_alone_before_its_time_and_a_disabled_one_always() -> None:
    clock = FakeClock()
    resting = Resource("a1", account().spec, ResourceState.RESTING, until=clock.now() + 10)
    assert restore(resting, clock.now()) is resting
    disabled = Resource("a2", account().spec, ResourceState.DISABLED)
    assert restore(disabled, clock.now() + 1e9) is disabled


def test_a_banned_resource_with_a_probe_comes_back_only_when_the_probe_passes() -> None:
    clock = FakeClock()
    prox = Tracker(proxy(), clock)
    for _ in range(3):
        prox.use("connection", partner="a1", is_proxy_fault=True)
    banned = prox.resource
    assert not probe_needed(banned, clock.now() + 3599)
    clock.advance(3600)
    assert probe_needed(banned, clock.now())
    failed = after_probe(banned, False, RULES, clock.now())
    assert failed.state is ResourceState.BANNED
    assert failed.until == clock.now() + 7200 and failed.counters.bans == 2
    assert not probe_needed(failed, clock.now())
    assert after_probe(failed, True, RULES, clock.now()) is failed  # not due: unchanged
    clock.advance(7200)
    passed = after_probe(failed, True, RULES, clock.now())
    assert passed.state is ResourceState.ACTIVE and passed.until is None
    assert passed.counters.bans == 2  # the next ban will last 4 h


def test_resting_accounts_never_need_a_probe() -> None:
    resting = Resource("a1", account().spec, ResourceState.RESTING, until=100.0)
    assert not probe_needed(resting, 200.0)


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        BanRules(proxy_distinct_accounts=0)
    with pytest.raises(ValueError):
        BanRules(rest_s=-1)


def _use_strategy() -> st.SearchStrategy[Step]:
    return st.tuples(
        st.floats(0, 400),
        st.sampled_from([None, "bot_check", "bannable", "connection", "throttled"]),
        st.sampled_from([None, "a1", "a2", "a3", "a4", "a5"]),
        st.booleans(),
    )


def _replay(start: Resource, steps: Sequence[Step], *, keep: bool) -> list[Action]:
    """Feed a resource the steps, storing either the kept history or all of it."""
    resource, now, actions = start, 1000.0, []
    history: tuple[Use, ...] = ()
    everything: tuple[Use, ...] = ()
    for delay, error, partner, fault in steps:
        now += delay
        use = Use(resource.id, now, error, partner=partner, is_proxy_fault=fault)
        verdict = decide(resource, use, history if keep else everything, RULES, now)
        resource = verdict.applied_to(resource, now)
        history, everything = verdict.history, (*everything, use) if not verdict.is_ban else ()
        actions.append(verdict.action)
        if resource.state is not ResourceState.ACTIVE:
            now = max(now, resource.until or now)
            resource = restore(resource, now)
    return actions


@settings(max_examples=300)
@given(st.sampled_from([proxy(), account()]), st.lists(_use_strategy(), max_size=60))
def test_the_kept_history_decides_exactly_as_the_whole_history(
    start: Resource, steps: list[Step]
) -> None:
    assert _replay(start, steps, keep=True) == _replay(start, steps, keep=False)


@given(st.lists(_use_strategy(), max_size=200))
def test_the_kept_history_stays_bounded(steps: list[Step]) -> None:
    history: tuple[Use, ...] = ()
    now = 0.0
    for delay, error, partner, fault in steps:
        now += delay
        history = history_to_keep(
            (*history, Use("p1", now, error, partner=partner, is_proxy_fault=fault)), RULES, now
        )
        # the last 2 uses + the latest refusal of 3 partners
        assert len(history) <= (RULES.proxy_fault_streak - 1) + RULES.proxy_distinct_accounts
