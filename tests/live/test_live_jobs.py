"""Live jobs through the pipeline: a live HLS stream ffmpeg writes in real time, recorded into
parts that land under their final names as they close, each playable; the result lists them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hauler.models import JobKind, JobSpec, LiveOptions
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import result_record
from hauler.pipeline.run import Pipeline
from hauler.transfer.engine import Engine
from tests.fixtures.mediaprobe import ffprobe
from tests.live.stream import HlsStream
from tests.worker.fleet import transfer_settings


@pytest.mark.slow
async def test_a_live_job_records_parts_until_the_stream_ends(
    hls: HlsStream, tmp_path: Path
) -> None:
    spec = JobSpec(
        url=hls.url, kind=JobKind.LIVE, live=LiveOptions(split_s=3.0, offline_grace_s=5.0)
    )
    out = tmp_path / "out"
    async with Engine(transfer_settings()) as engine:
        pipeline = Pipeline(resolver_for(engine), out)
        recording = asyncio.create_task(pipeline.run(spec))
        await hls.wait_for_segments(8)
        first_parts = [p for p in out.iterdir() if p.suffix == ".ts"]
        assert first_parts  # a part is under its final name while the recording goes on
        await hls.end()
        async with asyncio.timeout(30):
            outcome = await recording
    record = result_record(outcome)
    assert record["kind"] == "live" and record["live"]["end"] == "endlist"
    parts = record["live"]["parts"]
    assert len(parts) >= 2 and record["live"]["gaps"] == []
    total = 0.0
    for part in parts:
        path = Path(part["path"])
        assert path.parent == out and path.name.endswith(".ts")
        streams, duration_s = ffprobe(path)
        assert streams == {"video", "audio"}
        assert abs(duration_s - part["duration_s"]) <= 0.5
        total += part["duration_s"]
    assert abs(total - hls.produced_s) <= 1.5  # every second the stream offered
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p["path"]).name for p in parts)
    json.dumps(record)  # the stored record is JSON
