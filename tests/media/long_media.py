"""Media long enough to kill a download in its middle: an HLS VOD of 40 one-second segments and a
40 s progressive MP4, made with ``tests.media.library``'s ffmpeg recipes, and what the resume
tests read back: which segments a run fetched, how far yt-dlp's index and our control file got.

``build_long_media(root)`` writes ``hls/master.m3u8`` (variants ``v0`` 320x240, the one the
default format picks, and ``v1`` 160x120) and ``direct.mp4`` (what ``/video.html`` embeds), so
that a ``MediaSite`` over ``root`` serves them under the usual routes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.media.library import Clip, make_hls, make_mp4
from tests.media.site import LoggedRequest

DURATION_S = 40.0
BEST_VARIANT = "hls/v0"  # 320x240: the default format (bv*+ba/b) takes it
WORK_GLOB = ".hauler-media-*"


@dataclass(frozen=True, slots=True)
class LongMedia:
    """The long files and what is known about them."""

    root: Path
    hls_master: str  # below root
    segments: tuple[str, ...]  # request paths of the best variant's segments, in order
    hls_frames: str  # decoded_digest of the segments concatenated: what an HLS download holds
    mp4: Clip


def build_long_media(root: Path) -> LongMedia:
    """Make the long HLS VOD and MP4 under ``root`` (about 3 s of ffmpeg)."""
    root.mkdir(parents=True, exist_ok=True)
    master = make_hls(root, DURATION_S)
    playlist = (root / BEST_VARIANT / "index.m3u8").read_text().splitlines()
    names = [line for line in playlist if line and not line.startswith("#")]
    joined = root / "joined.ts"
    with joined.open("wb") as out:
        for name in names:
            out.write((root / BEST_VARIANT / name).read_bytes())
    return LongMedia(
        root=root,
        hls_master=master,
        segments=tuple(f"/media/{BEST_VARIANT}/{name}" for name in names),
        hls_frames=decoded_digest(joined),
        mp4=make_mp4(root, "direct.mp4", DURATION_S),
    )


def decoded_digest(path: Path) -> str:
    """A digest of every decoded frame of every stream, in order (ffmpeg's framemd5 hashes,
    without timestamps): equal for the segments joined and for their stream-copy remux into
    MP4, different as soon as one frame is missing, doubled or damaged."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0", "-f", "framemd5", "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    frames = [line.rsplit(",", 1) for line in out.splitlines() if line and line[0] != "#"]
    digest = hashlib.sha256()
    for stream_and_times, md5 in frames:
        digest.update(f"{stream_and_times.split(',', 1)[0]}:{md5.strip()}\n".encode())
    return digest.hexdigest()


def segment_requests(requests: Iterable[LoggedRequest], media: LongMedia) -> Counter[str]:
    """How many times each segment of the best variant was asked for."""
    wanted = set(media.segments)
    return Counter(r.path for r in requests if r.path in wanted)


def work_dir(out: Path) -> Path | None:
    """The media work directory under ``out``, if there is one."""
    found = sorted(out.glob(WORK_GLOB)) if out.is_dir() else []
    return found[0] if found else None


def fragment_index(out: Path) -> int:
    """How many fragments yt-dlp's ``NAME.ytdl`` says are in ``NAME.part`` (0 when none yet)."""
    work = work_dir(out)
    for index_file in sorted(work.glob("*.ytdl")) if work else []:
        try:
            data = json.loads(index_file.read_text())
            return int(data["downloader"]["current_fragment"]["index"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # caught mid-write: the next poll reads it whole
    return 0


def engine_done_bytes(out: Path) -> int:
    """The bytes our engine's control file (``NAME.part.json``) records as written."""
    work = work_dir(out)
    for control in sorted(work.glob("*.part.json")) if work else []:
        try:
            segments = json.loads(control.read_text())["segments"]
            return sum(int(pos) - int(start) for start, _, pos in segments)
        except (OSError, ValueError, KeyError, TypeError):
            return 0
    return 0
