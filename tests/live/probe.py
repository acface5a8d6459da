"""ffprobe for the live tests: the stream types and duration of a file, and the time of its
last packet (a live FLV says duration 0 in its header; its packets tell how long it is)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class Probed:
    """What ffprobe reads of a file."""

    streams: frozenset[str]
    duration_s: float


def probe(path: Path) -> Probed:
    """The stream types and the container's duration of ``path``; AssertionError when ffprobe
    cannot read it."""
    done = _ffprobe(["-show_entries", "stream=codec_type:format=duration"], path)
    data = json.loads(done)
    streams = frozenset(stream["codec_type"] for stream in data.get("streams", []))
    return Probed(streams, float(data.get("format", {}).get("duration") or 0.0))


def last_packet_s(path: Path, stream: str = "v") -> float:
    """The presentation time of the last packet of ``stream`` (``v``, ``a``) minus the first."""
    done = _ffprobe(["-select_streams", stream, "-show_entries", "packet=pts_time"], path)
    times = [float(p["pts_time"]) for p in json.loads(done).get("packets", []) if "pts_time" in p]
    assert times, f"{path.name}: no {stream} packets"
    return max(times) - min(times)


def _ffprobe(args: list[str], path: Path) -> str:
    command = ["ffprobe", "-v", "error", *args, "-of", "json", str(path)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, f"ffprobe cannot read {path.name}: {done.stderr.strip()}"
    return done.stdout
