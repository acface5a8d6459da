"""Where a live job's parts land: each closed part probed, remuxed when asked, renamed into
place, listed in the ledger and saved on the running job; the part an earlier attempt left
open adopted the same way; the room's watchers told (``notify_url``) when it goes live and
when a session ends."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from hauler import nofollow
from hauler.config import TransferSettings
from hauler.errors import BadMedia, LeaseLost
from hauler.live.parts import TEMP_SUFFIX, ClosedPart, OpenPart, PartWriter
from hauler.media.merge import merge
from hauler.models import LiveOptions
from hauler.pipeline import ffprobe
from hauler.pipeline.finalize import finalize
from hauler.pipeline.handler import JobRun
from hauler.pipeline.liveledger import LiveLedger, Orphan
from hauler.pipeline.outcome import Artifact, Expectation
from hauler.pipeline.verify import verify

_log = logging.getLogger(__name__)
REMUX_PREFIX = ".hauler-remux-"


class PartLander:
    """Lands the parts of one live job (all its sessions) and keeps its ledger saved."""

    def __init__(
        self,
        job: JobRun,
        options: LiveOptions,
        ledger: LiveLedger,
        settings: TransferSettings | None = None,
    ) -> None:
        self.job = job
        self.options = options
        self.ledger = ledger
        self._settings = settings  # the engine's: the notify hook passes the same URL guard
        self.artifacts: list[Artifact] = []
        self.bytes_fetched = 0
        self._source: Any = None
        self._is_on_air = False  # the session has written media (the room is live)
        self._notices: set[asyncio.Task[bool]] = set()
        self._is_lost = False

    def begin_session(self, source: Any) -> None:
        """A session begins on ``source``; it counts (and is announced) once it writes."""
        self._source, self._is_on_air = source, False

    def end_session(self, source: Any, end: str) -> None:
        """The session ended: announced when it had gone on the air."""
        if self._is_on_air:
            self._notify("ended", source, end=end)
        self._is_on_air = False

    async def drain_notices(self) -> None:
        """Wait for the notices still being posted (each bounded by its own timeout)."""
        if self._notices:
            await asyncio.wait(set(self._notices))

    async def opened(self, part: OpenPart, writer: PartWriter) -> None:
        """A part is about to get its first bytes: saved as the open one."""
        if not self._is_on_air:
            self._is_on_air = True
            self.ledger.sessions += 1
            self._notify("live", self._source)
        self.ledger.opened(part, writer.directory)
        await self.save()

    async def appended(self, part: OpenPart) -> None:
        """A segment went into the open part: saved, so that a successor that adopts the part
        resumes after it (one store write a segment: seconds apart)."""
        self.ledger.appended(part)
        await self.save()

    @property
    def is_lost(self) -> bool:
        """The job is no longer ours (cleared, or taken over): nothing more is saved."""
        return self._is_lost

    async def save(self) -> None:
        """The ledger saved on the running job. When the job is no longer ours (``LeaseLost``)
        the recording is asked to stop: its open part still lands, then the run ends lost."""
        if self._is_lost:
            return
        try:
            await self.job.continuation.save(self.ledger.record())
        except LeaseLost:
            self._is_lost = True
            self.job.continuation.stop.set()
            _log.warning("the recording's job is no longer ours: closing its part")

    async def land(self, part: ClosedPart) -> None:
        """A closed part checked and in place, listed and saved. A part ffprobe rejects is a
        gap of its duration (the recording goes on), not a failed job."""
        self.bytes_fetched += part.bytes
        try:
            artifact = await self._place(part)
        except BadMedia as exc:
            _log.warning("part %d is not playable, counted as a gap: %s", part.index, exc.message)
            self.ledger.gap(self.ledger.recorded_s, part.duration_s)
            self.ledger.open_part = None
        else:
            self.artifacts.append(artifact)
            self.ledger.landed(part, artifact.path, artifact.size)
        await self.save()

    async def adopt_orphan(self) -> None:
        """The part an earlier attempt had open (a worker killed mid-part): probed, placed and
        listed when it is playable, removed when it is not; nothing when it is gone."""
        orphan = self.ledger.open_part
        if orphan is None:
            return
        self.ledger.open_part = None
        if not self._is_ours(orphan):
            _log.warning("ignoring a saved open part outside %s", self.job.output_dir)
            return
        try:
            size = os.lstat(orphan.staged).st_size
        except FileNotFoundError:
            return  # landed before the attempt ended, or never written
        try:
            info = await ffprobe.probe(orphan.staged)
            if not info.streams & {"video", "audio"} or not info.duration_s:
                raise BadMedia(f"{orphan.staged.name}: no playable media")
        except BadMedia as exc:
            _log.warning("removing the unplayable part left open: %s", exc.message)
            _remove(orphan.staged)
            return
        part = _orphan_part(orphan, size, info.duration_s)
        artifact = await self._place(part, probed=True)
        self.artifacts.append(artifact)
        record = {**part.record(artifact.path), "bytes": artifact.size}
        self.ledger.adopted(orphan, record, part.duration_s)
        _log.info("adopted the part left open: %s (%.1f s)", artifact.path.name, part.duration_s)
        await self.save()

    def _notify(self, event: str, source: Any, *, end: str | None = None) -> None:
        """Post ``event`` to ``notify_url`` (when set) in the background: a slow hook must not
        hold the recording up."""
        if self.options.notify_url is None:
            return
        from hauler.pipeline.notify import notify

        body: dict[str, Any] = {
            "event": event,
            "url": self.job.spec.url,
            "job_id": self.job.job_id,
            "title": getattr(source, "title", None),
            "session": self.ledger.sessions,
        }
        if event == "ended":
            record = self.ledger.record(end)["live"]
            body.update(parts=record["parts"], gaps=record["gaps"], end=end)
        task = asyncio.ensure_future(notify(self.options.notify_url, body, settings=self._settings))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _place(self, part: ClosedPart, *, probed: bool = False) -> Artifact:
        """``part`` verified (remuxed first when asked) and renamed to its final name."""
        expect = Expectation(is_media=True, duration_s=None if probed else part.duration_s)
        staged = Artifact(part.path, part.bytes, "part", staged=part.staged, expect=expect)
        if self.options.remux is None:
            return await self._finalized(staged)
        work = nofollow.private_directory(self.job.output_dir / (REMUX_PREFIX + part.path.stem))
        try:
            return await self._finalized(await self._remuxed(staged, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)  # never follows a link in it

    async def _finalized(self, staged: Artifact) -> Artifact:
        checked = await verify(staged)
        options = self.job.options
        return await finalize(checked, self.job.spec.url, options.on_existing, durable=True)

    async def _remuxed(self, staged: Artifact, work: Path) -> Artifact:
        """The part rewritten into ``remux``'s container (stream copy) in ``work``, a private
        directory; the MPEG-TS/FLV original removed once the copy exists."""
        assert staged.staged is not None and self.options.remux is not None
        extension = self.options.remux
        target = work / f"{staged.path.stem}.{extension}"
        size = await merge([staged.staged], target)
        _remove(staged.staged)
        final = staged.path.with_suffix(f".{extension}")
        return Artifact(final, size, "part", staged=target, expect=staged.expect)

    def _is_ours(self, orphan: Orphan) -> bool:
        """A saved open part is trusted only as a temporary name in the output directory."""
        return (
            orphan.staged.parent == self.job.output_dir
            and orphan.staged.name.endswith(TEMP_SUFFIX)
            and orphan.path.parent == self.job.output_dir
        )


def _orphan_part(orphan: Orphan, size: int, duration_s: float) -> ClosedPart:
    """An adopted part as if it had closed (its start time as saved when it opened)."""
    return ClosedPart(
        path=orphan.path,
        staged=orphan.staged,
        index=orphan.index,
        started_at=orphan.started_at,
        duration_s=duration_s,
        bytes=size,
        segments=0,
    )


def _remove(path: Path) -> None:
    """Unlink ``path`` through its directory, never following a link; gone is fine."""
    dir_fd = nofollow.open_directory(path.parent)
    try:
        os.unlink(path.name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dir_fd)
