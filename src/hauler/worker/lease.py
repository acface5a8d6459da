"""The leases this worker holds, renewed together in one store call (with their fencing tokens)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hauler.store.base import JobStore

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Holds (job id → fencing token) for every claimed job and renews them all in one batch.

    ``on_lost`` is called with each job id the store reports as no longer ours; the caller
    cancels that job's transfer. Ids released or settled meanwhile are ignored.
    """

    def __init__(self, store: JobStore, lease_s: float, on_lost: Callable[[str], None]) -> None:
        self._store = store
        self._lease_s = lease_s
        self._on_lost = on_lost
        self._tokens: dict[str, int] = {}

    def hold(self, job_id: str, token: int) -> None:
        """Start renewing ``job_id`` under ``token`` (a newer claim replaces an older token)."""
        self._tokens[job_id] = token

    def drop(self, job_id: str, token: int) -> None:
        """Stop renewing ``job_id``, unless it is held under a newer token by now."""
        if self._tokens.get(job_id) == token:
            del self._tokens[job_id]

    def token(self, job_id: str) -> int | None:
        """The token under which ``job_id`` is held, or None."""
        return self._tokens.get(job_id)

    def __len__(self) -> int:
        return len(self._tokens)

    async def renew(self) -> list[str]:
        """Extend every held lease; report and forget the lost ones. Returns their ids.

        Raises ``StoreUnavailable`` when the store cannot be reached (leases stay held: the
        store decides on the next successful call whether they are still ours).
        """
        snapshot = list(self._tokens.items())
        if not snapshot:
            return []
        lost = await self._store.heartbeat(snapshot, self._lease_s)
        sent = dict(snapshot)
        reported: list[str] = []
        for job_id in lost:
            # Only a lease still held under the token we sent is lost; a newer claim is not.
            if job_id in sent and self._tokens.get(job_id) == sent[job_id]:
                del self._tokens[job_id]
                reported.append(job_id)
                self._on_lost(job_id)
        return reported
