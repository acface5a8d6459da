"""HLS and DASH formats: yt-dlp's fragment downloader (``YoutubeDL.dl``), in a thread.

Fragments are fetched ``concurrency`` at a time and appended in order to ``NAME.part``; yt-dlp's
``NAME.ytdl`` records how many are in, so a run killed at any moment resumes at the next
fragment instead of starting over (``hauler.media.fragindex`` keeps that record true: yt-dlp's
own can run ahead of the partial or behind it). The caller gives a directory of its own (not
the user's output directory): yt-dlp opens its files by path, and only there can no one plant
a link under their names.

Progress reaches the caller's sink on the event loop; cancelling the task stops the download
at its next progress report (a thread cannot be killed) and waits for the thread to end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hauler.errors import ConnectionFailed
from hauler.media import fragindex
from hauler.media.errors import classify
from hauler.media.extract import YtDlpLogger
from hauler.progress import ProgressSink
from hauler.redact import Redactor

InfoDict = dict[str, Any]

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class FragmentOptions:
    """How a fragmented format is fetched."""

    concurrency: int = DEFAULT_CONCURRENCY
    proxy: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    limit_rate_bps: int | None = None
    retries: int = 3


class _Stopped(Exception):
    """Raised from yt-dlp's progress hook: the task that waits for it was cancelled."""


async def download_fragments(
    fmt: InfoDict,
    path: Path,
    options: FragmentOptions,
    progress: ProgressSink,
    redactor: Redactor | None = None,
) -> int:
    """Download the fragmented format ``fmt`` to ``path``; the size of the file written.

    Raises hauler errors (``hauler.media.errors.classify``) only."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    report = _Reporter(loop, progress, path.name)
    work = asyncio.ensure_future(
        asyncio.to_thread(
            _download,
            fmt,
            path,
            options,
            report=report,
            stop=stop,
            redactor=redactor or Redactor([]),
        )
    )
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait({work})
        raise
    return path.stat().st_size


class _Reporter:
    """yt-dlp's cumulative byte counts as the sink's increments, on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: ProgressSink, name: str) -> None:
        self._loop, self._sink, self._name = loop, sink, name
        self._seen = 0
        self._started = False

    def hook(self, status: Mapping[str, Any]) -> None:
        done = int(status.get("downloaded_bytes") or 0)
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if not self._started:
            self._started = True
            self._call(self._sink.started, self._name, int(total) if total else None, done)
            self._seen = done
        if done > self._seen:
            self._call(self._sink.advanced, done - self._seen)
            self._seen = done

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        self._loop.call_soon_threadsafe(func, *args)


def _download(
    fmt: InfoDict,
    path: Path,
    options: FragmentOptions,
    *,
    report: _Reporter,
    stop: threading.Event,
    redactor: Redactor,
) -> None:
    import yt_dlp

    def hook(status: Mapping[str, Any]) -> None:
        if stop.is_set():
            raise _Stopped
        report.hook(status)

    try:
        fragindex.reconcile(path)
        with yt_dlp.YoutubeDL(_params(options, redactor)) as ydl:
            if not _run(ydl, path, fmt, hook):
                raise ConnectionFailed(f"{path.name}: the fragment download did not finish")
    except _Stopped:
        return
    except (yt_dlp.utils.YoutubeDLError, OSError) as exc:
        raise classify(exc, redactor) from exc


def _run(ydl: Any, path: Path, fmt: InfoDict, hook: Callable[[Mapping[str, Any]], None]) -> bool:
    """``YoutubeDL.dl`` with the fragment downloader's index kept in step with its partial."""
    from yt_dlp.downloader import get_suitable_downloader
    from yt_dlp.downloader.fragment import FragmentFD

    fd = get_suitable_downloader(fmt, ydl.params)(ydl, ydl.params)
    if isinstance(fd, FragmentFD):
        fragindex.keep_in_step(fd)
    fd.add_progress_hook(hook)
    info = dict(fmt)
    if info.get("http_headers") is None:
        info["http_headers"] = ydl._calc_headers(info)  # as YoutubeDL.dl does
    return bool(fd.download(str(path), info))


def _params(options: FragmentOptions, redactor: Redactor) -> InfoDict:
    params: InfoDict = {
        "logger": YtDlpLogger(redactor),
        "quiet": True,
        "noprogress": True,
        "color": "no_color",
        "concurrent_fragment_downloads": max(1, options.concurrency),
        "continuedl": True,
        "retries": options.retries,
        "fragment_retries": options.retries,
        "skip_unavailable_fragments": False,  # a hole in the video is a failure, not a warning
        "http_headers": dict(options.headers),
    }
    if options.proxy is not None:
        params["proxy"] = options.proxy
    if options.limit_rate_bps:
        params["ratelimit"] = options.limit_rate_bps
    return params
