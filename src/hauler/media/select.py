"""What to download for one extracted video: the formats the format request chose, the name the
output template gives, and what ffprobe must find in the result.

An info dict (fresh from ``extract``, or from the cache, made for another format request) is
processed again by yt-dlp for this job's format request: ``YoutubeDL.process_ie_result``, as
``yt-dlp --load-info-json`` does, with no request to the site.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hauler.errors import BadRequest
from hauler.media.errors import classify
from hauler.media.extract import YtDlpLogger
from hauler.redact import Redactor

InfoDict = dict[str, Any]

DEFAULT_TEMPLATE = "%(title)s [%(id)s].%(ext)s"
# The protocols our own engine fetches (one URL, ranges); the others go to yt-dlp's downloaders.
DIRECT_PROTOCOLS = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen formats (one, or video + audio to merge) and the output name."""

    info: InfoDict
    formats: tuple[InfoDict, ...]
    name: str  # relative to the output directory, from the template (sanitised again later)

    @property
    def subtitles(self) -> dict[str, InfoDict]:
        """The subtitles asked for, by language: ``{"en": {"url"|"data", "ext"}}``."""
        chosen = self.info.get("requested_subtitles") or {}
        return {lang: sub for lang, sub in chosen.items() if isinstance(sub, dict)}

    @property
    def thumbnail(self) -> str | None:
        """The URL of the video's best thumbnail (yt-dlp lists them worst first)."""
        thumbnails = [t for t in self.info.get("thumbnails") or () if t.get("url")]
        url = thumbnails[-1]["url"] if thumbnails else self.info.get("thumbnail")
        return str(url) if url else None

    @property
    def is_merge(self) -> bool:
        """True when separate formats are merged into one file."""
        return len(self.formats) > 1

    @property
    def streams(self) -> frozenset[str]:
        """The stream types the chosen formats promise (unknown codecs promise nothing)."""
        found: set[str] = set()
        for fmt in self.formats:
            if _has(fmt.get("vcodec")):
                found.add("video")
            if _has(fmt.get("acodec")):
                found.add("audio")
        return frozenset(found)

    @property
    def duration_s(self) -> float | None:
        """The duration the site gave, if any."""
        duration = self.info.get("duration")
        return float(duration) if isinstance(duration, int | float) and duration > 0 else None

    def summary(self) -> dict[str, Any]:
        """The ``media`` record of a job's result."""
        info = self.info
        return {
            "extractor": info.get("extractor_key") or info.get("extractor"),
            "id": info.get("id"),
            "title": info.get("title"),
            "duration_s": self.duration_s,
            "format_id": info.get("format_id"),
            "width": info.get("width"),
            "height": info.get("height"),
            "vcodec": info.get("vcodec"),
            "acodec": info.get("acodec"),
        }


def _has(codec: object) -> bool:
    return isinstance(codec, str) and codec not in ("none", "")


@dataclass(frozen=True, slots=True)
class Request:
    """What a job asks of a video: formats (yt-dlp syntax), the name template, the container
    of a merge, and the subtitle languages (None: no subtitles)."""

    format_spec: str
    template: str | None = None
    merge_format: str | None = None
    sub_langs: tuple[str, ...] | None = None


async def select(info: InfoDict, request: Request, redactor: Redactor | None = None) -> Selection:
    """The ``Selection`` for ``request`` from ``info``, in a thread."""
    return await asyncio.to_thread(select_blocking, info, request, redactor or Redactor([]))


def select_blocking(info: InfoDict, request: Request, redactor: Redactor) -> Selection:
    """``select`` without the thread."""
    import yt_dlp

    if info.get("_type", "video") != "video":
        raise BadRequest(f"{info.get('webpage_url') or 'this URL'} is a playlist, not one video")
    params: InfoDict = {
        "logger": YtDlpLogger(redactor),
        "quiet": True,
        "format": request.format_spec,
        "outtmpl": {"default": request.template or DEFAULT_TEMPLATE},
        "simulate": True,
    }
    if request.merge_format:
        params["merge_output_format"] = request.merge_format
    if request.sub_langs is not None:
        params |= {"writesubtitles": True, "subtitleslangs": list(request.sub_langs)}
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            # A cached info carries the choice made for another request: drop it.
            fresh = {k: v for k, v in info.items() if k != "requested_formats"}
            chosen = ydl.process_ie_result(fresh, download=False)
            name = ydl.prepare_filename(chosen)
            chosen = dict(ydl.sanitize_info(chosen))
    except yt_dlp.utils.YoutubeDLError as exc:
        raise classify(exc, redactor) from exc
    formats = tuple(chosen.get("requested_formats") or (chosen,))
    if not name:
        raise BadRequest(f"the template {request.template!r} gives no file name")
    return Selection(chosen, tuple(_with_headers(f, chosen) for f in formats), name)


def _with_headers(fmt: Mapping[str, Any], info: Mapping[str, Any]) -> InfoDict:
    """A format as yt-dlp's own downloaders take it: the video's fields under the format's."""
    merged = {**info, **fmt}
    merged.pop("requested_formats", None)
    return merged
