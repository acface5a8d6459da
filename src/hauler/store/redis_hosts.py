"""``HostBudgets`` over the Redis store. Keys, under the namespace's ``{hauler:NAME}`` tag
(``H`` a host's budget key, ``LABEL`` a proxy's label):

- ``hosts:all``: sorted set of every host held, scored +inf when it has a limit, else by the
  end of its latest cooldown (``host_budgets`` lists the scores after now; ``cool_host``
  forgets a bounded number of those at or before it);
- ``hosts:version``: ``hosts_version``;
- ``host:H``: hash: ``limit_json`` (the ``HostLimit``), its numbers for the scripts
  (``l_burst``, ``l_conns``, ``l_prate``, ``l_pconns``: '' for none; absent on a host known
  only by a cooldown), ``rate_per_s`` (in force, '' for none), ``rate_changed_at``, the
  host's bucket (``tokens`` as of ``updated_at``), ``cooldown_until``, ``requests``,
  ``throttled``;
- ``host:H:slots``: sorted set slot -> expires_at (the host's connections);
- ``host:H:p:LABEL:slots``: the same for the pair; ``host:H:labels``: set of the labels that
  have such a set (so that forgetting the host finds them);
- ``host:H:pbucket``: hash LABEL -> ``TOKENS|UPDATED_AT`` (a missing one is full);
- ``host:H:pcool``: hash LABEL -> until (the pairs' cooldowns).

Every write is one Lua script (``lua/host_*.lua``, each prefixed with ``host_common.lua``);
``enter_host`` is one script call, one round trip on every request's path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from importlib.resources import files
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from hauler.clock import Clock
from hauler.hosts import FREE, Admission, HostBudget, HostLimit, Refusal
from hauler.store.base import CONNECTION_POLL_S
from hauler.store.codec import (
    budget_key,
    checked_positive,
    checked_time,
    host_budget_from_fields,
    host_limit_to_json,
)

_SCRIPTS = (
    "host_enter", "host_leave", "host_renew", "host_cool", "host_rate", "host_limit",
    "host_remove",
)  # fmt: skip
# Hosts known only by cooldowns that are over, forgotten by one cool_host.
_SWEEP = 100


def _number(value: float | None) -> str:
    """A number as the scripts read it ('' for none): every digit, so it reads back equal."""
    return "" if value is None else repr(float(value))


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _admission(reply: Sequence[str]) -> Admission:
    """``host_enter.lua``'s reply as an ``Admission``."""
    if reply[0] == "free":
        return FREE
    refusal, wait_s, rate, changed_at = reply
    return Admission(
        refusal=Refusal(refusal) if refusal else None,
        wait_s=float(wait_s),
        rate_per_s=float(rate) if rate else None,
        rate_changed_at=float(changed_at),
    )


class RedisHosts:
    """The ``HostBudgets`` methods of ``RedisStore`` (a mixin: it provides ``_client``,
    ``_prefix``, ``_clock``, ``_key`` and ``_mapped``)."""

    _client: aioredis.Redis
    _prefix: str
    _clock: Clock
    _host_scripts: dict[str, AsyncScript] | None = None

    def _key(self, name: str) -> str:
        raise NotImplementedError  # RedisStore's

    def _mapped(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError  # RedisStore's

    async def _host_script(self, name: str, args: Sequence[Any]) -> Any:
        if self._host_scripts is None:
            lua = files("hauler.store").joinpath("lua")
            common = lua.joinpath("host_common.lua").read_text("utf-8")
            self._host_scripts = {
                n: self._client.register_script(
                    common + lua.joinpath(f"{n}.lua").read_text("utf-8")
                )
                for n in _SCRIPTS
            }
        with self._mapped():
            return await self._host_scripts[name](keys=[self._prefix], args=list(args))

    async def set_host_limit(self, limit: HostLimit) -> None:
        """See ``HostBudgets.set_host_limit``: one script."""
        args = [
            limit.host, host_limit_to_json(limit), _number(limit.rate_per_s),
            _number(limit.burst), _count(limit.connections), _number(limit.proxy_rate_per_s),
            _count(limit.proxy_connections), _number(self._clock.now()),
        ]  # fmt: skip
        await self._host_script("host_limit", args)

    async def remove_host_limit(self, host: str) -> bool:
        """See ``HostBudgets.remove_host_limit``: True when ``host_budgets`` listed it."""
        args = [budget_key(host), _number(self._clock.now())]
        return bool(await self._host_script("host_remove", args))

    async def host_budgets(self) -> list[HostBudget]:
        """See ``HostBudgets.host_budgets``: the index, then every listed host's keys in one
        MULTI (a consistent view of each)."""
        now = _number(self._clock.now())
        with self._mapped():
            hosts = cast(
                list[str],
                await self._client.zrangebyscore(self._key("hosts:all"), f"({now}", "+inf"),
            )
        if not hosts:
            return []
        async with self._client.pipeline(transaction=True) as pipe:
            for host in hosts:
                key = self._key(f"host:{host}")
                pipe.hgetall(key)
                pipe.hgetall(f"{key}:pcool")
                pipe.zcount(f"{key}:slots", f"({now}", "+inf")
            with self._mapped():
                replies = await pipe.execute()
        found = []
        for i, host in enumerate(hosts):
            fields, cooling, in_use = replies[3 * i : 3 * i + 3]
            if fields:  # forgotten between the two calls
                cooldowns = {label: float(until) for label, until in cooling.items()}
                found.append(host_budget_from_fields(host, fields, cooldowns, int(in_use)))
        return sorted(found, key=lambda budget: budget.host)

    async def enter_host(
        self, host: str, proxy: str | None, slot: str, slot_ttl_s: float
    ) -> Admission:
        """See ``HostBudgets.enter_host``: one script call."""
        now = self._clock.now()
        expires_at = now + checked_positive("slot_ttl_s", slot_ttl_s)
        args = [budget_key(host), proxy or "", slot, _number(now), _number(expires_at),
                _number(CONNECTION_POLL_S)]  # fmt: skip
        return _admission(await self._host_script("host_enter", args))

    async def leave_host(self, host: str, proxy: str | None, slot: str) -> None:
        """See ``HostBudgets.leave_host``."""
        await self._host_script("host_leave", [budget_key(host), proxy or "", slot])

    async def renew_host_slots(
        self, host: str, proxy: str | None, slots: Sequence[str], slot_ttl_s: float
    ) -> None:
        """See ``HostBudgets.renew_host_slots``: one script."""
        now = self._clock.now()
        expires_at = now + checked_positive("slot_ttl_s", slot_ttl_s)
        if slots:
            args = [budget_key(host), proxy or "", _number(now), _number(expires_at), *slots]
            await self._host_script("host_renew", args)

    async def cool_host(self, host: str, proxy: str | None, until: float) -> None:
        """See ``HostBudgets.cool_host``; also forgets a bounded number of hosts known only by
        cooldowns that are over."""
        until = checked_time("until", until)
        args = [budget_key(host), proxy or "", _number(until), _number(self._clock.now()),
                _SWEEP]  # fmt: skip
        await self._host_script("host_cool", args)

    async def set_host_rate(self, host: str, rate_per_s: float, expected_changed_at: float) -> bool:
        """See ``HostBudgets.set_host_rate``: one script."""
        rate = checked_positive("rate_per_s", rate_per_s)
        args = [budget_key(host), _number(rate), _number(expected_changed_at),
                _number(self._clock.now())]  # fmt: skip
        return bool(await self._host_script("host_rate", args))

    async def hosts_version(self) -> int:
        """See ``HostBudgets.hosts_version``."""
        with self._mapped():
            value = await self._client.get(self._key("hosts:version"))
        return int(value or 0)
