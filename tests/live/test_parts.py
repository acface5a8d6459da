"""The part writer on the live stream's real segments (every closed part plays, its duration
the sum of its segments', its bytes theirs), and its names, links, disk-full and closing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from hauler.errors import DiskFull, LocalError
from hauler.live.m3u8 import parse_media
from hauler.live.parts import TEMP_SUFFIX, PartWriter, part_name
from hauler.naming import MAX_FILE_NAME_BYTES
from tests.live.probe import probe
from tests.live.stream import HlsStream

STARTED_AT = 1_714_557_600.0  # 2024-05-01T10:00:00Z


@dataclass(frozen=True, slots=True)
class Taken:
    """One segment of the stream, as it was listed and read from the disk."""

    sequence: int
    duration_s: float
    is_discontinuity: bool
    started_at: float
    data: bytes


async def take(hls: HlsStream, count: int, restart_after: int | None = None) -> list[Taken]:
    """The stream's next ``count`` segments, read while they are in the window; the encoder
    restarted once ``restart_after`` of them were taken."""
    taken: list[Taken] = []
    for _ in range(400):  # 0.1 s apart: 40 s at most
        playlist = parse_media(hls.playlist.read_text(), hls.url)
        wanted = taken[-1].sequence + 1 if taken else playlist.media_sequence
        for segment in playlist.segments:
            if segment.sequence >= wanted and len(taken) < count:
                data = (hls.root / segment.url.rsplit("/", 1)[1]).read_bytes()
                date = segment.program_date_time or 0.0
                taken.append(
                    Taken(
                        segment.sequence, segment.duration_s, segment.is_discontinuity, date, data
                    )
                )
        if len(taken) >= count:
            return taken
        if restart_after is not None and len(taken) >= restart_after and hls.encoders == 1:
            await hls.restart()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"took {len(taken)} of {count} segments")


@pytest.mark.slow
async def test_every_closed_part_of_real_segments_plays_for_the_sum_of_its_segments(
    hls: HlsStream, tmp_path: Path
) -> None:
    segments = await take(hls, 8, restart_after=5)
    assert sum(s.is_discontinuity for s in segments) == 1
    out = tmp_path / "out"
    writer = PartWriter(out, "Room: live/now", split_s=3.0)
    closed = []
    for segment in segments:
        if segment.is_discontinuity:  # new timestamps: a new part
            closed.append(await writer.cut())
        part = await writer.append(
            segment.data, segment.duration_s, segment.started_at, segment.sequence
        )
        closed.append(part)
        if segment.sequence == segments[1].sequence:
            # Mid-part, as a kill -9 would leave it: the temporary file plays already.
            assert writer.current is not None
            assert probe(out / writer.current.staged).streams == {"video", "audio"}
    closed.append(await writer.close())
    parts = [part for part in closed if part is not None]
    assert parts == writer.closed and [p.index for p in parts] == list(range(1, len(parts) + 1))
    by_sequence = {s.sequence: s for s in segments}
    for part in parts:
        assert part.first_sequence is not None and part.last_sequence is not None
        inside = [by_sequence[n] for n in range(part.first_sequence, part.last_sequence + 1)]
        assert part.segments == len(inside)
        assert part.duration_s == pytest.approx(sum(s.duration_s for s in inside))
        assert part.duration_s < 3.0 + 1.0  # split at 3 s of media
        assert part.started_at == inside[0].started_at
        data = part.staged.read_bytes()
        assert len(data) == part.bytes
        assert (
            hashlib.sha256(data).digest()
            == hashlib.sha256(b"".join(s.data for s in inside)).digest()
        )
        found = probe(part.staged)
        assert found.streams == {"video", "audio"}
        assert abs(found.duration_s - part.duration_s) <= 0.5, part
        assert part.staged.name == part.path.name + TEMP_SUFFIX
        assert re.fullmatch(r"Room_ live_now\.\d{8}T\d{6}Z\.part\d{3}\.ts", part.path.name)
    assert sum(p.duration_s for p in parts) == pytest.approx(sum(s.duration_s for s in segments))
    assert sum(p.bytes for p in parts) == writer.bytes_written
    # Cut at the discontinuity: the restarted encoder's first segment begins a part.
    restarted = next(s.sequence for s in segments if s.is_discontinuity)
    assert any(p.first_sequence == restarted for p in parts)


def test_names_carry_the_utc_start_and_the_number_and_fit() -> None:
    assert part_name("room", STARTED_AT, 7) == "room.20240501T100000Z.part007.ts"
    assert part_name("../up", STARTED_AT, 1, "mkv").endswith(".part001.mkv")
    assert "/" not in part_name("a/b", STARTED_AT, 1)
    long = part_name("é" * 300, STARTED_AT, 12)
    assert len(long.encode()) <= MAX_FILE_NAME_BYTES and long.endswith("Z.part012.ts")
    long.encode().decode("utf-8")  # not cut inside a character


async def test_a_part_closes_at_the_split_and_on_demand(tmp_path: Path) -> None:
    writer = PartWriter(tmp_path, "room", split_s=2.0, first_index=5)
    assert await writer.cut() is None  # nothing open: nothing made
    assert list(tmp_path.iterdir()) == []
    assert await writer.append(b"a" * 10, 1.0, STARTED_AT, 40) is None
    first = await writer.append(b"b" * 10, 1.0, STARTED_AT + 1, 41)
    assert first is not None
    assert (first.index, first.segments, first.bytes, first.duration_s) == (5, 2, 20, 2.0)
    assert (first.first_sequence, first.last_sequence) == (40, 41)
    assert first.staged.read_bytes() == b"a" * 10 + b"b" * 10
    await writer.append(b"c", 0.5, STARTED_AT + 2, 42)
    second = await writer.close()
    assert second is not None and second.index == 6 and second.started_at == STARTED_AT + 2
    assert second.record(tmp_path / "moved.ts") == {
        "path": str(tmp_path / "moved.ts"),
        "started_at": "2024-05-01T10:00:02Z",
        "duration_s": 0.5,
        "bytes": 1,
    }
    assert await writer.close() is None
    with pytest.raises(RuntimeError, match="closed"):
        await writer.append(b"d", 1.0, STARTED_AT, 43)


async def test_a_planted_link_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    name = part_name("room", STARTED_AT, 1)
    (tmp_path / (name + TEMP_SUFFIX)).symlink_to(target)
    writer = PartWriter(tmp_path, "room", split_s=10.0)
    await writer.append(b"segment", 1.0, STARTED_AT)
    part = await writer.close()
    assert part is not None and part.staged.name == "room.20240501T100000Z.part001.1.ts.part"
    assert part.staged.read_bytes() == b"segment" and not part.staged.is_symlink()
    assert target.read_bytes() == b"precious"
    # A directory reached through a link is refused.
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    linked = PartWriter(tmp_path / "linked" / "deeper", "room", split_s=10.0)
    with pytest.raises(LocalError, match="symbolic link"):
        await linked.append(b"x", 1.0, STARTED_AT)
    assert list((tmp_path / "real").iterdir()) == []


async def test_a_full_disk_is_disk_full(small_disk: Path) -> None:
    writer = PartWriter(small_disk, "room", split_s=60.0)
    with pytest.raises(DiskFull, match="no space"):
        for _ in range(10):
            await writer.append(os.urandom(256 * 1024), 1.0, STARTED_AT)
    await writer.close()


def test_nonsense_splits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split_s"):
        PartWriter(tmp_path, "room", split_s=0)
