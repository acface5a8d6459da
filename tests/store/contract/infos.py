"""Info dicts shaped like yt-dlp's for a YouTube video, of a chosen size, for the cache tests.

What makes a real one 50-500 KB, and how well it compresses: formats, each with a signed URL
whose signature and ids differ per format (random, incompressible), thumbnails, a heatmap, and
automatic captions (a URL per language and caption format, all sharing one signature). The
size grows with the number of caption languages; the bytes are deterministic per ``seed``.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

_B64 = string.ascii_letters + string.digits + "-_"
_EXTS = ("json3", "srv1", "srv2", "srv3", "ttml", "vtt")
_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-us,en;q=0.5",
    "Sec-Fetch-Mode": "navigate",
}


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(_B64, k=n))


def _format(rng: random.Random, video_id: str, itag: int, height: int) -> dict[str, Any]:
    url = (
        f"https://rr{rng.randint(1, 9)}---sn-{_token(rng, 8)}.googlevideo.com/videoplayback?"
        f"expire=1767225600&ei={_token(rng, 22)}&ip=203.0.113.7&id=o-{_token(rng, 44)}"
        f"&itag={itag}&source=youtube&requiressl=yes&mh={_token(rng, 2)}&mm=31%2C29"
        f"&mn=sn-{_token(rng, 8)}%2Csn-{_token(rng, 8)}&ms=au%2Crdu&mv=m&mvi=3&pl=24"
        f"&initcwndbps=1987500&vprv=1&svpuc=1&mime=video%2Fmp4&gir=yes&clen={rng.randint(1, 9**9)}"
        f"&dur=212.061&lmt=1700000000000000&mt=1767200000&fvip=4&keepalive=yes&fexp=24007246"
        f"&c=IOS&txp=5535434&sparams=expire%2Cei%2Cip%2Cid%2Citag%2Csource%2Crequiressl"
        f"&sig={_token(rng, 100)}&lsparams=mh%2Cmm%2Cmn%2Cms%2Cmv%2Cmvi%2Cpl%2Cinitcwndbps"
        f"&lsig={_token(rng, 70)}"
    )
    return {
        "format_id": str(itag), "format_note": f"{height}p", "ext": "mp4", "protocol": "https",
        "acodec": "none", "vcodec": "avc1.640028", "url": url, "width": height * 16 // 9,
        "height": height, "fps": 30, "filesize": rng.randint(10**6, 10**8),
        "tbr": rng.uniform(100, 5000), "vbr": rng.uniform(100, 5000), "quality": height // 100,
        "has_drm": False, "source_preference": -1, "language": None, "dynamic_range": "SDR",
        "container": "mp4_dash", "http_headers": dict(_HEADERS), "video_ext": "mp4",
        "audio_ext": "none", "resolution": f"{height * 16 // 9}x{height}",
        "downloader_options": {"http_chunk_size": 10485760},
        "format": f"{itag} - {height * 16 // 9}x{height} ({height}p)",
        "_video_id": video_id,
    }  # fmt: skip


def _captions(rng: random.Random, video_id: str, langs: int) -> dict[str, Any]:
    signature = _token(rng, 80)
    base = (
        f"https://www.youtube.com/api/timedtext?v={video_id}&ei={_token(rng, 22)}&caps=asr"
        f"&opi=112496729&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0&expire=1767225600"
        f"&sparams=ip%2Cipbits%2Cexpire%2Cv%2Cei%2Ccaps%2Copi%2Cxoaf&signature={signature}"
        "&key=yt8&kind=asr&lang=en"
    )
    found: dict[str, Any] = {}
    for n in range(langs):
        lang = f"{string.ascii_lowercase[n % 26]}{string.ascii_lowercase[n // 26 % 26]}"
        found[lang] = [
            {"ext": ext, "url": f"{base}&tlang={lang}&fmt={ext}", "name": f"Language {lang}"}
            for ext in _EXTS
        ]
    return found


def youtube_like_info(target_bytes: int, seed: int = 1) -> dict[str, Any]:
    """An info dict whose compact JSON is about ``target_bytes`` (within a few KB)."""
    rng = random.Random(seed)
    video_id = _token(rng, 11)
    info: dict[str, Any] = {
        "id": video_id, "title": "Ünïcødé 標題 — a test video 🎬", "extractor": "youtube",
        "extractor_key": "Youtube", "webpage_url": f"https://www.youtube.com/watch?v={video_id}",
        "duration": 212, "uploader": "Some Channel", "channel_id": "UC" + _token(rng, 22),
        "description": " ".join(rng.choice(("video", "music", "live", "new", "🎵", "официальный"))
                                for _ in range(400)),
        "tags": [f"tag {n}" for n in range(25)], "categories": ["Music"],
        "formats": [_format(rng, video_id, 100 + n, (144, 240, 360, 480, 720, 1080)[n % 6])
                    for n in range(40)],
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/{n}.jpg", "preference": -n,
                        "id": str(n), "height": 90 + n, "width": 120 + n} for n in range(40)],
        "heatmap": [{"start_time": n * 2.1, "end_time": n * 2.1 + 2.1, "value": rng.random()}
                    for n in range(100)],
    }  # fmt: skip
    langs = 0
    while len(json.dumps(info, separators=(",", ":"))) < target_bytes:
        langs += 10
        info["automatic_captions"] = _captions(random.Random(seed), video_id, langs)
    return info
