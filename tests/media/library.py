"""Media the suite makes itself with ffmpeg (``testsrc`` + ``sine``, small and short), and what
is known about each file: its duration, streams and sha256, for tests to assert on.

``build_library(root)`` writes, under ``root``:

- ``direct.mp4``: h264 + aac, 160x120, 3 s (a direct MP4, and the one the video page embeds);
- ``clip1.mp4`` .. ``clip3.mp4``: the entries of the playlist page and the RSS feed (2, 3, 4 s);
- ``hls/master.m3u8``: an HLS VOD with two variants (``v0`` 320x240 and ``v1`` 160x120, audio
  muxed in each), 4 s in 1 s MPEG-TS segments;
- ``dash/manifest.mpd``: a DASH VOD with separate video (320x240) and audio representations,
  4 s in 1 s fMP4 segments.

Standalone: ``python -m tests.media.library DIR`` builds it into DIR (for the bench and by hand).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FFMPEG = "ffmpeg"
FPS = 25


@dataclass(frozen=True, slots=True)
class Clip:
    """One progressive MP4 of the library."""

    name: str
    duration_s: float
    width: int
    height: int
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class MediaLibrary:
    """The files ``build_library`` made and what the tests may assert about them."""

    root: Path
    direct: Clip
    clips: tuple[Clip, ...]
    hls_master: str  # path below root
    hls_variants: tuple[tuple[int, int], ...]  # (width, height) per variant, in master order
    hls_duration_s: float
    dash_manifest: str
    dash_size: tuple[int, int]
    dash_duration_s: float


def _run_ffmpeg(args: list[str], cwd: Path) -> None:
    if shutil.which(FFMPEG) is None:
        raise RuntimeError("ffmpeg is not installed (scripts/test installs it with apt-get)")
    command = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(command)}\n{done.stderr}")


def _sources(size: str, duration_s: float, frequency: int = 440) -> list[str]:
    return [
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate={FPS}:duration={duration_s}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:duration={duration_s}",
    ]


_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(FPS)]
_AAC = ["-c:a", "aac", "-b:a", "64k"]


def make_mp4(root: Path, name: str, duration_s: float, frequency: int = 440) -> Clip:
    """A progressive MP4 (h264 + aac, 160x120, moov first) of ``duration_s`` seconds."""
    args = [*_sources("160x120", duration_s, frequency), *_H264, *_AAC]
    _run_ffmpeg([*args, "-shortest", "-movflags", "+faststart", name], root)
    data = (root / name).read_bytes()
    return Clip(name, duration_s, 160, 120, hashlib.sha256(data).hexdigest(), len(data))


def make_hls(root: Path, duration_s: float) -> str:
    """An HLS VOD with two variants (320x240 and 160x120); returns the master's path."""
    (root / "hls").mkdir(exist_ok=True)
    filters = "[0:v]split=2[big][small0];[small0]scale=160:120[small]"
    mapping = ["-map", "[big]", "-map", "[small]", "-map", "1:a", "-map", "1:a"]
    rates = ["-b:v:0", "300k", "-b:v:1", "100k"]
    hls = ["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"]
    names = ["-hls_segment_filename", "hls/v%v/seg%d.ts", "-master_pl_name", "master.m3u8"]
    streams = ["-var_stream_map", "v:0,a:0 v:1,a:1", "hls/v%v/index.m3u8"]
    encode = [*mapping, *_H264, *_AAC, *rates]
    sources = _sources("320x240", duration_s)
    _run_ffmpeg([*sources, "-filter_complex", filters, *encode, *hls, *names, *streams], root)
    return "hls/master.m3u8"


def make_dash(root: Path, duration_s: float) -> str:
    """A DASH VOD with video (320x240) and audio in separate adaptation sets."""
    (root / "dash").mkdir(exist_ok=True)
    dash = ["-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0"]
    sets = ["-adaptation_sets", "id=0,streams=v id=1,streams=a"]
    names = ["-init_seg_name", "init-$RepresentationID$.m4s"]
    names += ["-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s"]
    mapping = ["-map", "0:v", "-map", "1:a"]
    sources = _sources("320x240", duration_s)
    _run_ffmpeg(
        [*sources, *mapping, *_H264, *_AAC, *dash, *sets, *names, "dash/manifest.mpd"], root
    )
    return "dash/manifest.mpd"


SUBTITLES = (
    "WEBVTT\n\n00:00.000 --> 00:01.500\nA test pattern\n\n00:01.500 --> 00:03.000\nand a tone\n"
)


def make_extras(root: Path, video: str) -> None:
    """A poster frame (``poster.jpg``) and English subtitles (``direct.en.vtt``) for the
    page that offers them with its video."""
    _run_ffmpeg(["-i", video, "-frames:v", "1", "-update", "1", "poster.jpg"], root)
    (root / "direct.en.vtt").write_text(SUBTITLES, encoding="utf-8")


def build_library(root: Path) -> MediaLibrary:
    """Make every file of the library under ``root`` (about a second in all)."""
    root.mkdir(parents=True, exist_ok=True)
    direct = make_mp4(root, "direct.mp4", 3.0)
    make_extras(root, "direct.mp4")
    clips = tuple(
        make_mp4(root, f"clip{n}.mp4", float(n + 1), frequency=220 * (n + 1)) for n in (1, 2, 3)
    )
    return MediaLibrary(
        root=root,
        direct=direct,
        clips=clips,
        hls_master=make_hls(root, 4.0),
        hls_variants=((320, 240), (160, 120)),
        hls_duration_s=4.0,
        dash_manifest=make_dash(root, 4.0),
        dash_size=(320, 240),
        dash_duration_s=4.0,
    )


if __name__ == "__main__":
    built = build_library(Path(sys.argv[1]))
    print(built.root)
