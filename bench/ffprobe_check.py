"""What ffprobe reads in a media file, and whether a download matches its source.

A download passes when ffprobe reads it, finds the source's stream types (video, audio) and a
duration within 2 % (or 1 s) of the source's, and, when a sha256 is given, has the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT_S = 60.0
DURATION_TOLERANCE = 0.02
DURATION_SLACK_S = 1.0
HASH_CHUNK_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class Probe:
    """ffprobe's view of a file: container, stream types in order, duration; or why not."""

    format_name: str
    streams: list[str]
    duration_s: float
    error: str | None = None


def probe(path: Path) -> Probe:
    """Run ffprobe on ``path``."""
    argv = ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path)]
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return Probe("", [], 0.0, f"ffprobe timed out on {path.name}")
    if done.returncode != 0:
        return Probe("", [], 0.0, f"ffprobe cannot read {path.name}: {done.stderr.strip()[:200]}")
    data = json.loads(done.stdout)
    fmt = data.get("format", {})
    streams = [str(s.get("codec_type")) for s in data.get("streams", [])]
    return Probe(str(fmt.get("format_name", "")), streams, float(fmt.get("duration") or 0.0))


def problem(
    path: Path, got: Probe, streams: list[str], duration_s: float, sha256: str | None = None
) -> str | None:
    """Why ``path`` (``got`` is its probe) is not a good copy of a source with these streams,
    duration and sha256."""
    if got.error:
        return got.error
    missing = sorted(set(streams) - set(got.streams))
    if missing:
        return f"{path.name}: no {', '.join(missing)} stream (has {got.streams})"
    if abs(got.duration_s - duration_s) > max(DURATION_SLACK_S, DURATION_TOLERANCE * duration_s):
        return f"{path.name}: lasts {got.duration_s:.2f} s, the source {duration_s:.2f} s"
    if sha256 and sha256_of(path) != sha256:
        return f"{path.name}: sha256 differs from the source's"
    return None


def sha256_of(path: Path) -> str:
    """The sha256 of the file at ``path``, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()
