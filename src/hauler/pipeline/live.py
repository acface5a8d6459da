"""The handler of live jobs: a live HLS playlist recorded into parts until the stream ends.

``live/follow.HlsFollower`` follows the playlist (each segment once, gaps recorded, reconnects)
and ``live/parts.PartWriter`` cuts MPEG-TS parts of ``split_s`` of media. Each part, as it
closes, is checked with ffprobe (playable, its segments' duration) and renamed into place by the
pipeline's own verify and finalize, so a recording of hours leaves its finished parts under
their final names as it goes; the job's result lists them with the gaps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hauler.clock import Clock, SystemClock
from hauler.live.follow import HlsFollower, Recording
from hauler.live.parts import ClosedPart, PartWriter
from hauler.models import JobKind, LiveOptions
from hauler.naming import name_from_response, safe_name
from hauler.pipeline.finalize import finalize
from hauler.pipeline.handler import JobRun
from hauler.pipeline.livegetter import FetcherGetter
from hauler.pipeline.outcome import Artifact, Expectation, Outcome
from hauler.pipeline.verify import verify
from hauler.policy.live import LiveRules
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest


class LiveHandler:
    """Runs ``live`` jobs; the engine's sessions fetch the playlist and its segments."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()

    async def run(self, job: JobRun) -> Outcome:
        """Record until the stream ends (ENDLIST, offline past the grace, the max duration)."""
        started = time.monotonic()
        options = job.spec.live or LiveOptions()
        request = TransferRequest(
            url=job.spec.url,
            output_dir=job.output_dir,
            headers=job.headers,
            proxy=job.resources.proxy,
        )
        getter = FetcherGetter(self._engine.fetcher(request))
        writer = PartWriter(job.output_dir, _base_name(job), split_s=options.split_s)
        landed: list[tuple[Artifact, ClosedPart]] = []

        async def land(part: ClosedPart) -> None:
            landed.append((await _land(job, part), part))

        follower = HlsFollower(
            job.spec.url, getter, self._clock, writer, _rules(options), on_part=land
        )
        recording = await follower.run()
        return Outcome(
            kind=JobKind.LIVE,
            url=job.spec.url,
            final_url=job.spec.url,
            artifacts=tuple(artifact for artifact, _ in landed),
            bytes_fetched=recording.bytes,
            elapsed_s=time.monotonic() - started,
            details={"live": _summary(recording, landed)},
        )


async def _land(job: JobRun, part: ClosedPart) -> Artifact:
    """One closed part checked (ffprobe: playable, its segments' duration) and renamed."""
    staged = Artifact(
        part.path,
        part.bytes,
        "part",
        staged=part.staged,
        expect=Expectation(is_media=True, duration_s=part.duration_s),
    )
    checked = await verify(staged)
    return await finalize(checked, job.spec.url, job.options.on_existing, durable=True)


def _rules(options: LiveOptions) -> LiveRules:
    return LiveRules(offline_grace_s=options.offline_grace_s, max_duration_s=options.max_duration_s)


def _base_name(job: JobRun) -> str:
    """The parts' base name: the job's output name, else the playlist's (``live.m3u8`` →
    ``live``)."""
    name = job.spec.output or name_from_response(job.spec.url, None)
    return safe_name(Path(name).stem or "live")


def _summary(recording: Recording, landed: list[tuple[Artifact, ClosedPart]]) -> dict[str, Any]:
    return {
        "parts": [part.record(artifact.path) for artifact, part in landed],
        "gaps": [gap.record() for gap in recording.gaps],
        "end": str(recording.end.value),
        "recorded_s": round(recording.recorded_s, 3),
        "missing_s": round(recording.missing_s, 3),
    }
