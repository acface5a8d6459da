"""The first timestamp of MPEG-TS segments ffmpeg writes: consecutive segments run on by their
durations, another encoder's start again, audio-only segments have theirs, garbage has none."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from hauler.live.ts import PACKET_BYTES, first_pts_s
from hauler.policy.live import PTS_WRAP_S, timestamps_run_on
from tests.media.library import make_hls


def test_consecutive_segments_run_on_and_another_encoder_starts_again(tmp_path: Path) -> None:
    for name, duration_s in (("a", 4.0), ("b", 2.0)):
        (tmp_path / name).mkdir()
        make_hls(tmp_path / name, duration_s)
    segments = [(tmp_path / "a/hls/v0" / f"seg{n}.ts").read_bytes() for n in range(4)]
    starts = [first_pts_s(data) for data in segments]
    known = [start for start in starts if start is not None]
    assert len(known) == 4
    assert [b - a for a, b in itertools.pairwise(known)] == pytest.approx([1.0] * 3, abs=0.001)
    assert all(timestamps_run_on(a, 1.0, b) for a, b in itertools.pairwise(known))
    # A second encoder's first segment begins where the first one's first did: no run-on.
    other = first_pts_s((tmp_path / "b/hls/v0/seg0.ts").read_bytes())
    assert other == pytest.approx(known[0])
    assert not timestamps_run_on(known[3], 1.0, other)


def test_an_audio_only_segment_has_its_audio_timestamp(tmp_path: Path) -> None:
    out = tmp_path / "audio.ts"
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi"]
    command += ["-i", "sine=duration=1", "-c:a", "aac", "-f", "mpegts", str(out)]
    subprocess.run(command, check=True, timeout=30)
    start = first_pts_s(out.read_bytes())
    assert start is not None and 0.0 < start < 5.0  # ffmpeg's mpegts offset: 1.4 s


def test_what_is_not_ts_has_no_timestamp() -> None:
    assert first_pts_s(b"") is None
    assert first_pts_s(b"<html>" * 100) is None
    assert first_pts_s(bytes([0x47]) + bytes(PACKET_BYTES * 3)) is None  # packets, no PES


def test_the_33_bit_clock_runs_on_across_its_wrap() -> None:
    assert timestamps_run_on(PTS_WRAP_S - 0.5, 1.0, 0.5)
    assert timestamps_run_on(10.0, 6.0, 16.4)  # a rounded EXTINF
    assert not timestamps_run_on(10.0, 6.0, 1.4)
    assert not timestamps_run_on(10.0, 6.0, 18.5)
