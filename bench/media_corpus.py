"""The media the media bench serves: made once with ffmpeg, cached with what ffprobe reads.

- ``video.mp4``: one H.264 + AAC MP4 of about 200 MiB (``testsrc2`` encoded at a constant
  16 Mbit/s: x264's CBR filler makes the size a matter of duration), behind ``video.html``, a page
  with a ``<video>`` tag that yt-dlp's generic extractor finds.
- ``hls/master.m3u8``: an HLS VOD of 1 s MPEG-TS segments (one variant, ``hls/index.m3u8``).

``manifest.json`` records each item's parameters, size, sha256 (the MP4), duration and streams;
an item whose parameters or size changed is made again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import ffprobe_check
from corpus import CorpusError, check_disk

GENERATOR_VERSION = 1
MIB = 1 << 20
VIDEO_BPS = 16_000_000
AUDIO_BPS = 128_000
ENCODE_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class MediaWant:
    """What to make: the MP4's size in MiB, the HLS VOD's fragments and video bit rate."""

    mp4_mib: int = 200
    hls_fragments: int = 300
    hls_video_bps: int = 4_000_000


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One made item: its entry path (relative to the root), bytes, sha256, duration, streams."""

    name: str
    size: int
    sha256: str
    duration_s: float
    streams: list[str]
    params: str


def ensure(root: Path, want: MediaWant) -> dict[str, MediaItem]:
    """Make the missing items of ``want`` under ``root``; all of them by name (mp4, hls)."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise CorpusError("ffmpeg/ffprobe not found: apt-get install ffmpeg")
    root.mkdir(parents=True, exist_ok=True)
    manifest = _load(root)
    makers = {"mp4": (_mp4_params(want), _make_mp4), "hls": (_hls_params(want), _make_hls)}
    for key, (params, make) in makers.items():
        if not _is_cached(root, manifest.get(key), params):
            check_disk(root, 2 * want.mp4_mib * MIB + 512 * MIB)
            print(f"making {key} media in {root} (ffmpeg, once) ...", flush=True)
            manifest[key] = make(root, want, params)
            _save(root, manifest)
    return manifest


def _mp4_params(want: MediaWant) -> str:
    return f"v{GENERATOR_VERSION} mp4 {want.mp4_mib}MiB {VIDEO_BPS}bps"


def _hls_params(want: MediaWant) -> str:
    return f"v{GENERATOR_VERSION} hls {want.hls_fragments}x1s {want.hls_video_bps}bps"


def _make_mp4(root: Path, want: MediaWant, params: str) -> MediaItem:
    # Seconds of constant-rate stream for the size, plus one for the container and rounding.
    duration_s = want.mp4_mib * MIB * 8 // (VIDEO_BPS + AUDIO_BPS) + 1
    path = root / "video.mp4"
    _ffmpeg(
        [*_sources(duration_s), *_h264(VIDEO_BPS, gop=50), "-movflags", "+faststart", str(path)]
    )
    (root / "video.html").write_text(_page("hauler media bench", "video.mp4"))
    return _item(root, "video.mp4", params, digest=ffprobe_check.sha256_of(path))


def _make_hls(root: Path, want: MediaWant, params: str) -> MediaItem:
    hls = root / "hls"
    shutil.rmtree(hls, ignore_errors=True)
    hls.mkdir()
    # A key frame every second (25 frames, no scene cuts): ffmpeg cuts a segment at each one.
    out = ["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_list_size", "0"]
    out += ["-master_pl_name", "master.m3u8", "-hls_segment_filename", str(hls / "seg%05d.ts")]
    _ffmpeg(
        [*_sources(want.hls_fragments), *_h264(want.hls_video_bps, gop=25), *out,
         str(hls / "index.m3u8")]
    )  # fmt: skip
    segments = sorted(hls.glob("seg*.ts"))
    if len(segments) != want.hls_fragments:
        raise CorpusError(f"ffmpeg cut {len(segments)} segments, want {want.hls_fragments}")
    item = _item(root, "hls/index.m3u8", params, digest="")
    size = sum(p.stat().st_size for p in segments)
    return MediaItem("hls/master.m3u8", size, "", item.duration_s, item.streams, params)


def _sources(duration_s: int) -> list[str]:
    video = f"testsrc2=size=1280x720:rate=25:duration={duration_s}"
    audio = f"sine=frequency=440:sample_rate=48000:duration={duration_s}"
    return ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio]


def _h264(video_bps: int, gop: int) -> list[str]:
    rate = str(video_bps)
    cbr = ["-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", str(video_bps // 2)]
    video = ["-c:v", "libx264", "-preset", "ultrafast", *cbr, "-x264-params", "nal-hrd=cbr"]
    video += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p"]
    return [*video, "-c:a", "aac", "-b:a", str(AUDIO_BPS), "-shortest"]


def _ffmpeg(args: list[str]) -> None:
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=ENCODE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise CorpusError(f"ffmpeg took over {ENCODE_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        raise CorpusError(f"ffmpeg failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def _page(title: str, src: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body><h1>{title}</h1>\n<video controls width='1280'>\n"
        f"  <source src='{src}' type='video/mp4'>\n</video></body></html>\n"
    )


def _item(root: Path, name: str, params: str, digest: str) -> MediaItem:
    probe = ffprobe_check.probe(root / name)
    if probe.error:
        raise CorpusError(f"ffprobe cannot read the {name} ffmpeg made: {probe.error}")
    size = (root / name).stat().st_size
    return MediaItem(name, size, digest, probe.duration_s, probe.streams, params)


def _is_cached(root: Path, item: MediaItem | None, params: str) -> bool:
    if item is None or item.params != params:
        return False
    if item.name.startswith("hls/"):
        size = sum(p.stat().st_size for p in (root / "hls").glob("seg*.ts"))
        return size == item.size and (root / item.name).is_file()
    path = root / item.name
    return path.is_file() and path.stat().st_size == item.size


def _load(root: Path) -> dict[str, MediaItem]:
    path = root / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return {k: MediaItem(**v) for k, v in json.loads(path.read_text()).items()}
    except (ValueError, TypeError):
        return {}  # an old or broken manifest: make everything again


def _save(root: Path, manifest: dict[str, MediaItem]) -> None:
    data = {k: asdict(v) for k, v in manifest.items()}
    (root / "manifest.json").write_text(json.dumps(data, indent=2))
