"""The store's contract, by role: the only state the fleet shares.

A component depends on the role it uses, never on more:

- ``JobStore``: the jobs (add, claim, heartbeat, complete, fail, release, and the operator's
  get, list_jobs, counts, requeue, clear);
- ``FleetControl``: the pause and stop flags every worker polls;
- ``WorkerRegistry``: the workers' heartbeat records;
- ``InfoCache``: extracted media metadata (yt-dlp info dicts) by URL and by video id, with a TTL;
- ``ResourcePools``: the proxies and accounts, lent and given back atomically fleet-wide;
- ``HostBudgets``: per-host (and per proxy on a host) rate, connections and cooldowns.

``Store`` is the union of the roles plus ``close``: what ``open_store(url)`` returns, one
backend object (``sqlite.SqliteStore``, ``redis.RedisStore``) implementing every role. Both
backends pass one contract suite per role (``tests/store/contract/``). The role to come is
``HostBudgets`` (per-host concurrency, rate and cooldown), a protocol of its own here,
implemented by the same backend objects.

Every method is atomic on its own: a crash between two calls may leave a job running with an
unexpired lease, never half-moved between states.

Fencing: every successful claim gives the job a new, larger ``token``. ``heartbeat``,
``complete``, ``fail`` and ``release`` act only when the token passed is the job's current
one and the job is ``running``; otherwise they change nothing and report the job as lost
(``LeaseLost`` for single-job calls, the id in the returned list for batch calls).

Attempts: ``attempts`` counts the claims that ended in ``complete`` or ``fail`` (and the one
running now). A job whose lease expired is put back to ``queued`` by the next ``claim`` (any
worker's) without failing it and without counting that attempt: a worker killed any number of
times does not use up the job's ``max_attempts``. It keeps ``node``, so that the worker holding
its partial file gets the first chance to resume it (affinity, see ``claim``). A released job
(``release``) does not count its attempt either. A job whose lease is lost ``MAX_LOST_LEASES``
times (its worker died every time it ran it: a poison job, say one that runs the worker out of
memory) is failed instead, with error class ``lost``; ``requeue`` gives it a fresh budget.

Time: every timestamp is epoch seconds from the store's injected ``Clock``.

Errors: a store that cannot be reached raises ``StoreUnavailable`` (transient) with a message
that tells the user what to check; bad arguments raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hauler.hosts import Admission, HostBudget, HostLimit
from hauler.models import Job, JobError, JobSpec, JobState, WorkerInfo
from hauler.resources import (
    Resource,
    ResourceKind,
    ResourceSpec,
    ResourceState,
    Strategy,
    Use,
)

# After this many lost leases a job is failed (class "lost") instead of queued again.
MAX_LOST_LEASES = 10
LOST_MESSAGE = (
    f"its worker was lost {MAX_LOST_LEASES} times while running it (killed, crashed, out of "
    "memory?); `hauler requeue --reason lost` runs it again"
)


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add`` did: ids of the jobs it created, and how many specs were duplicates."""

    ids: list[str]
    skipped: int

    @property
    def added(self) -> int:
        """How many jobs were created."""
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished job, for ``complete``."""

    job_id: str
    token: int
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs ``list_jobs``/``requeue``/``clear`` act on. Unset fields match everything.

    ``reason`` matches the error class of the last failure (``JobError.error_class``), ``host``
    the URL's host name, ``since`` jobs updated at or after that epoch time.
    """

    state: JobState | None = None
    reason: str | None = None
    host: str | None = None
    since: float | None = None
    collection: str | None = None
    limit: int | None = None


class JobStore(Protocol):
    """The jobs: queued by intake, leased and finished by workers, managed by the operator."""

    async def add(self, specs: Sequence[JobSpec]) -> AddResult:
        """Queue ``specs`` (state ``queued``, ``ready_at`` now), skipping any whose
        ``dedupe_key`` the store already knows, in any state, and duplicates within the batch.
        The batch is applied atomically. Callers stream large inputs in batches (~1,000)."""
        ...

    async def claim(
        self, worker: str, node: str, n: int, lease_s: float, affinity_s: float = 30.0
    ) -> list[Job]:
        """Atomically take up to ``n`` jobs for ``worker`` running on ``node``.

        First moves due ``retrying`` jobs (``ready_at <= now``) and expired ``running`` leases
        (``lease_until <= now``) back to ``queued`` (an expired lease gives its attempt back; the
        ``MAX_LOST_LEASES``-th fails the job, class ``lost``). Then takes ``queued`` jobs ordered by
        priority (higher first), then ``ready_at``, then insertion order, skipping jobs whose
        ``node`` is another node while ``ready_at + affinity_s > now`` (that node holds their
        partial file). Each taken job becomes ``running`` with ``worker``, ``node``,
        ``lease_until = now + lease_s``, a new larger ``token`` and ``attempts + 1``.
        Returns the claimed jobs as they now are (possibly fewer than ``n``, or none)."""
        ...

    async def heartbeat(self, leases: Sequence[tuple[str, int]], lease_s: float) -> list[str]:
        """Extend each (job_id, token) lease to ``now + lease_s``; return the ids whose token
        is no longer current (lost: the worker must abandon them)."""
        ...

    async def complete(self, done: Sequence[Completion]) -> list[str]:
        """Mark each job ``done`` with its result; return the ids that were lost (not changed)."""
        ...

    async def fail(
        self,
        job_id: str,
        token: int,
        error: JobError,
        retry_at: float | None,
        *,
        is_counted: bool = True,
    ) -> JobState:
        """Record ``error``; move to ``retrying`` with ``ready_at = retry_at``, or to ``failed``
        when ``retry_at`` is None. ``is_counted`` False gives the attempt back (a job that waits
        for a resource, not one that failed). Returns the new state; raises ``LeaseLost``."""
        ...

    async def save_result(self, job_id: str, token: int, result: Mapping[str, Any]) -> None:
        """Record ``result`` on a running job while it still runs (a recording lists its parts
        as they close); a later attempt's claim returns it in ``Job.result``. Raises
        ``LeaseLost`` when the token is not current or the job is not running."""
        ...

    async def release(self, job_id: str, token: int) -> None:
        """Give a running job back (graceful shutdown): ``queued``, ``ready_at`` now, the
        attempt not counted, ``node`` kept for affinity. Raises ``LeaseLost``."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        ...

    async def list_jobs(self, flt: JobFilter = JobFilter()) -> list[Job]:
        """Jobs matching ``flt``, most recently updated first, at most ``flt.limit``."""
        ...

    async def counts(self) -> dict[JobState, int]:
        """The number of jobs in every state (every state present, zeros included).
        Maintained by the atomic operations themselves, not by scanning."""
        ...

    async def requeue(self, flt: JobFilter) -> int:
        """Move matching jobs (``flt.state`` defaults to ``failed``; ``running`` is refused with
        ``ValueError``) back to ``queued`` with ``attempts`` 0 and ``ready_at`` now.
        Returns how many moved."""
        ...

    async def clear(self, flt: JobFilter) -> int:
        """Delete matching jobs (``running`` ones only if ``flt.state`` is ``running``) and
        forget their dedupe keys. Returns how many were deleted."""
        ...


class FleetControl(Protocol):
    """The fleet's flags: pause (the fleet or one worker) and the graceful-stop request."""

    async def set_paused(self, paused: bool, worker: str | None = None) -> None:
        """Pause or resume every worker (``worker`` None) or the named one."""
        ...

    async def is_paused(self, worker: str) -> bool:
        """True when the fleet or this worker is paused."""
        ...

    async def paused_workers(self) -> tuple[bool, list[str]]:
        """(is the whole fleet paused, names of individually paused workers)."""
        ...

    async def request_stop(self) -> float:
        """Ask every worker running now to exit gracefully; returns the time of the request.
        Workers started after it are not affected."""
        ...

    async def stop_requested_at(self) -> float | None:
        """When the last stop was requested, or None."""
        ...


class WorkerRegistry(Protocol):
    """Which workers are alive: each one's heartbeat record, with a time to live."""

    async def beat_worker(self, info: WorkerInfo, ttl_s: float) -> None:
        """Record a worker's heartbeat; it counts as alive until ``info.seen_at + ttl_s``."""
        ...

    async def remove_worker(self, name: str) -> None:
        """Forget a worker (on clean exit)."""
        ...

    async def workers(self) -> list[WorkerInfo]:
        """The workers alive now."""
        ...


class InfoCache(Protocol):
    """Extracted media metadata, so that a retry of a job, or a second job for the same video,
    does not run the extraction again.

    One ``put_info`` stores one info dict under several keys at once (``url:<normalised url>``
    and ``id:<extractor>:<video id>``, say); each key reads it until ``now + ttl_s`` by the
    store's clock, and not from that instant on. Keys are the caller's strings, used as given.
    The dict must be JSON (yt-dlp's ``sanitize_info`` makes it so): it reads back equal, with
    tuples as lists; anything else raises ``ValueError``.

    Storage: the info is stored once per put, as zlib-compressed JSON, and every key of the put
    points at that one copy (SQLite: ``info_blobs`` + ``info_keys``; Redis: one blob key and one
    small pointer key per key, all with a Redis TTL). Measured on a YouTube-like info of 312 KB
    of JSON (40 formats with signed URLs, automatic captions; tests/store/contract/infos.py):
    21.6 KB stored (zlib level 6, 14x; Redis ``MEMORY USAGE`` 24.7 KB, and 192 B per pointer),
    so one copy for the usual two keys takes half the room of a copy per key, for a second
    round trip on a Redis get (a join on SQLite). A put takes ~3 ms, a get ~1 ms on either
    backend, most of it the JSON and zlib work, done on the caller's event loop (once per
    extraction). Expired entries do not pile up: SQLite deletes a bounded number of expired
    keys on every put (a blob goes with its last key), Redis drops them by their key TTLs.
    """

    async def get_info(self, key: str) -> dict[str, Any] | None:
        """The info stored under ``key``, or None when there is none or it expired."""
        ...

    async def put_info(self, keys: Sequence[str], info: dict[str, Any], ttl_s: float) -> None:
        """Store ``info`` once under every key of ``keys`` (replacing what each held), each
        readable until ``now + ttl_s``. Raises ``ValueError`` for no keys, a bare string as
        ``keys``, a ``ttl_s`` that is not a positive finite number, or an info that is not JSON."""
        ...

    async def drop_info(self, key: str) -> None:
        """Forget the info stored under ``key``, under every key its put stored it under (a
        stale info, its signed URLs expired, must not come back through its other key).
        Keys that a later put gave another info keep it. Dropping a missing key does nothing."""
        ...


# The caller's pure choice for ``lend``: (the kind's resources, now) -> the one to lend, as it
# should be stored (e.g. restored to active), or None. From ``hauler.policy.selection``.
Chooser = Callable[[Sequence[Resource], float], Resource | None]
# The caller's pure decision for ``give_back``: (the resource, its history with the new use
# last) -> (the resource as it should be stored, the history to keep). From ``hauler.policy.ban``.
Decider = Callable[[Resource, Sequence[Use]], tuple[Resource, Sequence[Use]]]

# How many uses of one resource the store keeps (the newest): enough for the ban policy's
# window (distinct accounts in 10 minutes, faults in a row).
MAX_USE_HISTORY = 64


class ResourcePools(Protocol):
    """The proxies and accounts of the fleet: their specs, states, counters and use history.

    Ids are short strings, the kind's letter and a counter never reused (``p1``, ``a3``).
    Specs are stored as given, secrets included (the store is trusted): a caller never logs
    what these methods return without masking it (``hauler.redact``).

    ``lend`` and ``give_back`` are atomic read-modify-writes with a pure callable in the
    middle: the store reads, the callable decides, the store writes only if nothing changed
    in between (SQLite: all inside one ``BEGIN IMMEDIATE``; Redis: ``WATCH``/``MULTI``, tried
    again on a conflict a bounded number of times, then ``StoreUnavailable``). The callable may
    therefore run more than once per call, and must not do anything but decide. Whatever it
    returns, the store keeps the resource's id, spec and ``created_at``, sets ``updated_at``
    to now, and applies the in-use arithmetic itself on top of what it returned.

    ``pools_version`` changes whenever a resource is added, updated, removed, or changes its
    state or ``until`` (by ``lend``'s chooser, ``give_back``'s decider, ``set_resource_state`` or
    ``reset_resource``): a job waiting for a usable resource polls it to be woken when a ban
    ends or an operator unbans (not when only counters move).

    Holders: ``lend``, ``lend_by`` and ``give_back`` take an optional ``holder`` (a worker's
    name, not empty), and the store keeps, in the same atomic step as the ``in_use``
    arithmetic, how many of each resource each holder has (a lend adds one, a give_back takes
    one off, the hold is gone at 0). A holder that dies without giving back is released by
    ``release_holder`` (``hauler.pools.holds``: every worker releases the holders the
    ``WorkerRegistry`` no longer lists). A lend without a holder is not tracked: never given
    back, only ``reset_resource`` frees it. A holder gives back what it lent under the same
    name (a give_back without one takes one off ``in_use`` and no hold); one that has no hold of
    the resource (released meanwhile, or forgotten by ``reset_resource``) records the use and
    applies the decision but takes nothing off ``in_use`` (the release took its share off
    already; taking another would free a slot another holder holds).
    """

    async def add_resources(self, specs: Sequence[ResourceSpec]) -> list[str]:
        """Add each spec, in one atomic batch; return their ids in order. A spec whose ``key``
        (kind and name) is already stored (or earlier in the batch) replaces that resource's
        spec (weight, region, sites, secrets) and keeps its id, state, counters and history."""
        ...

    async def list_resources(self, kind: ResourceKind | None = None) -> list[Resource]:
        """The resources of ``kind`` (every kind when None), in the order they were added."""
        ...

    async def get_resource(self, resource_id: str) -> Resource | None:
        """The resource with this id, or None."""
        ...

    async def remove_resource(self, resource_id: str) -> bool:
        """Forget a resource, its history and its holds; False when there was none. One lent
        right now stays lent to its job; its ``give_back`` then finds nothing and returns
        None."""
        ...

    async def lend(
        self, kind: ResourceKind, choose: Chooser, *, holder: str | None = None
    ) -> Resource | None:
        """Atomically: read the resources of ``kind``, call ``choose(resources, now)``, and
        store the chosen one as returned with ``in_use + 1`` and ``uses + 1`` (and, with a
        ``holder``, one more hold of it by ``holder``). Returns the resource as stored, or None
        (nothing written) when ``choose`` returns None. Two callers never both take the last
        slot: each chooses on what the other wrote. Raises ``ValueError`` when ``choose``
        returns a resource that was not offered."""
        ...

    async def lend_by(
        self,
        kind: ResourceKind,
        strategy: Strategy,
        *,
        site: str | None = None,
        region: str | None = None,
        sticky_id: str | None = None,
        max_in_use: int | None = None,
        rng_value: float = 0.0,
        holder: str | None = None,
    ) -> Resource | None:
        """Atomically pick a resource of ``kind`` by a built-in strategy, in the store itself
        (one SQLite transaction, one Redis script: no resource list crosses the wire), and
        store it with ``in_use + 1`` and ``uses + 1`` (and one more hold by ``holder``, when
        given), restored to active (its use since the last rest forgotten) when its rest or
        ban was over. Returns it as stored, or None (nothing written) when none is eligible.

        Eligible: active, or resting/banned with ``until`` over; fewer than ``max_in_use`` lent
        (no limit when None); serving ``site`` (a resource with no sites serves every site, one
        tied to sites only those and their subdomains, and no request without a site) and in
        ``region`` when one is asked (case ignored). The eligible ``sticky_id`` is kept;
        otherwise, in the order resources were added, with the kind's cursor (the position of
        the last resource ``lend_by`` picked, any strategy, any worker):

        - ``round_robin``: the first eligible after the cursor, wrapping around;
        - ``least_connections``: the fewest ``in_use``, ties the first after the cursor;
        - ``fastest``: the best ``hauler.policy.selection.score`` (compared in steps of 1e-4),
          ties the first after the cursor;
        - ``weighted``: the kind's resources of positive ``spec.weight`` (in every state) cut
          ``[0, total weight)`` into one interval each, in order; the one ``rng_value`` x the
          total falls in, or, when that one is not eligible, the first eligible after it
          (wrapping around: a resource not usable now gives its share to the next); every
          weight 0: as ``round_robin``.

        ``rng_value`` (in [0, 1), else ``ValueError``) is drawn by the caller, so that a pick
        is deterministic given it. Atomic with ``lend`` and every other write: two callers
        never both take the last slot."""
        ...

    async def give_back(
        self, resource_id: str, use: Use, decide: Decider, *, holder: str | None = None
    ) -> Resource | None:
        """Atomically: read the resource and its history (oldest first), call ``decide(resource,
        [*history, use])``, store the resource returned with ``in_use - 1`` (never below 0) and
        the newest ``MAX_USE_HISTORY`` uses of the history returned. Returns the resource as
        stored, or None (``decide`` not called) when there is no such resource.

        With a ``holder``: one of its holds of the resource is taken off with the ``in_use``;
        when it has none (released by ``release_holder``, or forgotten by ``reset_resource``,
        since it lent), ``in_use`` is stored as ``decide`` returned it, nothing taken off (see
        the class)."""
        ...

    async def resource_holders(self) -> dict[str, int]:
        """Every holder that holds anything now, and how many holds it has in all (over every
        resource and kind)."""
        ...

    async def release_holder(self, holder: str) -> int:
        """Atomically give back everything ``holder`` holds: for every resource it holds
        ``count`` of, ``in_use - count`` (never below 0), and its holds forgotten. Nothing
        else moves (the state, ``until``, the other counters, the history, ``pools_version``:
        only counters change). Returns how many holds were released (0 for an unknown
        holder). A give_back by the holder afterwards takes nothing off ``in_use``."""
        ...

    async def resource_uses(self, resource_id: str) -> list[Use]:
        """The stored use history of a resource, oldest first (none for an unknown id)."""
        ...

    async def set_resource_state(
        self, resource_id: str, state: ResourceState, until: float | None
    ) -> bool:
        """Set the state and ``until`` by hand (ban, unban, disable), counters kept; False when
        there is no such resource. Raises ``ValueError`` for resting/banned without ``until``."""
        ...

    async def reset_resource(self, resource_id: str) -> bool:
        """Zero the counters (``in_use`` included), make it active, clear its history and forget
        its holds (their give_backs then take nothing off); False when there is no such
        resource."""
        ...

    async def pools_version(self) -> int:
        """A number that changes whenever a resource's state may have (see the class)."""
        ...


# How long a request waits before asking again when every connection of its host is open (a
# slot frees when another request's body ends, on this worker or another).
CONNECTION_POLL_S = 0.05


class HostBudgets(Protocol):
    """Per-host budgets for the whole fleet (``hauler.hosts``): limits, token buckets,
    connection slots and cooldowns, every check-and-take atomic in the store (SQLite: one
    ``BEGIN IMMEDIATE``; Redis: one script), on the store's clock.

    ``host`` in these methods is a budget's key: a limit's host when one governs the request
    (``hosts.governing_host``), else the request's own host (which only cooldowns can hold
    back). ``proxy`` is the label of the proxy the request goes through (``net.proxy_label``),
    or None for a direct request. A slot is the caller's unique name for one admitted request.

    ``hosts_version`` changes whenever a limit is set or removed, or a cooldown starts, so a
    worker's view of which hosts to ask about stays current by polling a number."""

    async def set_host_limit(self, limit: HostLimit) -> None:
        """Store ``limit`` for ``limit.host``, replacing the one there: the rate in force
        starts again at the new limit's rate, the buckets full; slots, cooldowns and counters
        are kept."""
        ...

    async def remove_host_limit(self, host: str) -> bool:
        """Forget the host: its limit, buckets, slots, cooldowns and counters. False when the
        store held nothing for it."""
        ...

    async def host_budgets(self) -> list[HostBudget]:
        """Every host with a limit, or with a cooldown (its own or a proxy's) not yet over,
        sorted by host. ``in_use`` counts the slots not expired."""
        ...

    async def enter_host(
        self, host: str, proxy: str | None, slot: str, slot_ttl_s: float
    ) -> Admission:
        """Ask for one request to ``host`` (through ``proxy``), atomically:

        1. the host's cooldown, or the pair's (``proxy`` on the host), not over: refused
           (``COOLDOWN``), ``wait_s`` until the later of the two ends;
        2. expired slots dropped; the host has a ``connections`` limit and that many slots,
           or ``proxy`` is given and the host has a ``proxy_connections`` limit and the pair
           has that many: refused (``CONNECTIONS``), ``wait_s`` = ``CONNECTION_POLL_S`` (or
           less, when the first slot expires sooner);
        3. otherwise admitted: when the host has a limit, ``slot`` is added to its slots and,
           with ``proxy``, to the pair's, each expiring in ``slot_ttl_s``; one token taken
           (``hostrate.Bucket.take``: into debt, ``wait_s`` until it is due) from the host's
           bucket at the rate in force, and with ``proxy`` one from the pair's bucket at
           ``proxy_rate_per_s``, ``wait_s`` the longer wait; ``requests`` + 1.

        A refusal writes nothing. A host the store holds nothing for is admitted at once, and
        nothing is written."""
        ...

    async def leave_host(self, host: str, proxy: str | None, slot: str) -> None:
        """The request's body ended: its slot frees (from the host and the pair). A slot not
        held (expired, or the host forgotten) is ignored."""
        ...

    async def renew_host_slots(
        self, host: str, proxy: str | None, slots: Sequence[str], slot_ttl_s: float
    ) -> None:
        """Push the expiry of the slots still held to ``slot_ttl_s`` from now (a long body
        keeps its connection counted); the others are ignored."""
        ...

    async def cool_host(self, host: str, proxy: str | None, until: float) -> None:
        """A 429/503 answer: the pair (``proxy`` on ``host``) or, for a direct request, the
        host, cools until ``until`` (or longer, when it already did); ``throttled`` + 1. A
        host the store held nothing for is kept, listed while it cools."""
        ...

    async def set_host_rate(self, host: str, rate_per_s: float, expected_changed_at: float) -> bool:
        """Compare-and-set of the rate in force (the caller's ``hostrate.adapt``): when the
        host has a rate limit and its ``rate_changed_at`` is still ``expected_changed_at``,
        refill its bucket at the old rate until now, then set the rate and ``rate_changed_at``
        = now. False (nothing written) otherwise."""
        ...

    async def hosts_version(self) -> int:
        """A number that changes whenever a limit is set or removed, or a cooldown starts."""
        ...


class Store(
    JobStore, FleetControl, WorkerRegistry, InfoCache, ResourcePools, HostBudgets, Protocol
):
    """Every role over one backend, as ``open_store`` returns it."""

    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        ...
