"""The handler of media pages: yt-dlp extracts and chooses, hauler fetches, ffmpeg merges.

1. The info dict comes from the store's ``InfoCache`` when a job for the same URL (or, once
   known, the same extractor and video id) extracted it within the TTL; else yt-dlp extracts it
   (``hauler.media.extract``, in a thread) and it is cached under both keys.
2. yt-dlp chooses the formats for the job's format request and names the file from the
   template (``hauler.media.select``); the name goes through our naming rules.
3. Each chosen format is fetched into a private work directory beside the output: a direct
   HTTP(S) format through our segmented engine (connections, resume, validators, rate limits),
   an HLS or DASH one through yt-dlp's fragment downloader (``hauler.media.fragments``).
4. Video and audio fetched apart are merged by ffmpeg (stream copy).
5. The result is returned staged, with what ffprobe must find in it (the streams the formats
   promised, the duration the site gave): the pipeline's verify stage checks it, its finalize
   stage renames it into place and writes the ``.info.json`` sidecar.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hauler import nofollow
from hauler.cookies import CookieFileError, cookie_header, load_cookie_file
from hauler.errors import BadRequest, Forbidden, Gone, LocalError, NotFound, Throttled
from hauler.media.claims import video_key
from hauler.media.extract import ExtractOptions, extract
from hauler.media.formats import format_spec
from hauler.media.fragments import FragmentOptions, download_fragments
from hauler.media.merge import merge
from hauler.media.select import DIRECT_PROTOCOLS, Request, Selection, select
from hauler.media.sidecar import sidecar_info
from hauler.models import JobKind, JobSpec, MediaOptions, OnExisting, normalise_url
from hauler.naming import safe_path
from hauler.pipeline.handler import JobRun
from hauler.pipeline.outcome import Artifact, Expectation, Outcome
from hauler.redact import Redactor
from hauler.store.base import InfoCache
from hauler.transfer import marks
from hauler.transfer.engine import Engine
from hauler.transfer.request import TransferRequest

_log = logging.getLogger(__name__)

DEFAULT_INFO_TTL_S = 6 * 3600.0  # signed media URLs expire: a day-old info would fail
WORK_PREFIX = ".hauler-media-"  # + a hash of the URL: a private directory per video


@dataclass(frozen=True, slots=True)
class _Fetched:
    path: Path
    nbytes: int  # fetched by this run
    resumed: int = 0  # already on disk from an earlier run


class MediaHandler:
    """Runs ``media`` jobs; the engine fetches direct formats, ``cache`` spares extractions."""

    def __init__(
        self,
        engine: Engine,
        cache: InfoCache | None = None,
        info_ttl_s: float = DEFAULT_INFO_TTL_S,
        fragment_concurrency: int = 8,
    ) -> None:
        self._engine = engine
        self._cache = cache
        self._ttl_s = info_ttl_s
        self._fragment_concurrency = fragment_concurrency

    async def run(self, job: JobRun) -> Outcome:
        """Extract (or recall), choose, fetch, merge: the video staged for verify and finalize.

        A cached info whose format URLs the site now refuses (signed URLs expire, some are
        bound to the address that extracted them) is dropped and extracted again, once."""
        started = time.monotonic()
        options = job.spec.media or MediaOptions()
        info, is_cached = await self._info(job, options)
        try:
            return await self._from_info(job, options, info, is_cached, started)
        except (Forbidden, Gone, NotFound):
            if not is_cached or self._cache is None:
                raise
            _log.info("the cached info of %s is stale: extracting again", job.spec.url)
            await self._cache.drop_info(_url_key(job))
            info, _ = await self._info(job, options)
            return await self._from_info(job, options, info, False, started)

    async def _from_info(
        self,
        job: JobRun,
        options: MediaOptions,
        info: dict[str, Any],
        is_cached: bool,
        started: float,
    ) -> Outcome:
        redactor = Redactor.for_specs([job.spec])
        if info.get("_type") == "playlist":
            return _playlist(job, options, info, is_cached, time.monotonic() - started)
        request = Request(
            format_spec(options.format),
            options.template,
            options.merge_output_format,
            options.sub_langs if options.write_subs else None,
        )
        selection = await select(info, request, redactor)
        final = safe_path(job.output_dir, selection.name)
        summary = {**selection.summary(), "info_cached": is_cached}
        source = f"{_identity(job, selection.info)} format={format_spec(options.format)}"
        if _is_done(final, source, job):
            return _skipped(job, final, summary, time.monotonic() - started)
        work = nofollow.private_directory(job.output_dir / (WORK_PREFIX + _work_name(job)))
        fetched = await asyncio.gather(*(self._fetch(job, fmt, work) for fmt in selection.formats))
        staged = await _combine(selection, [f.path for f in fetched], work)
        expect = Expectation(
            is_media=True, streams=selection.streams, duration_s=selection.duration_s
        )
        size = staged.stat().st_size
        artifact = Artifact(final, size, "media", staged=staged, expect=expect, source=source)
        extras = await self._extras(job, options, selection, final, work)
        return Outcome(
            kind=JobKind.MEDIA,
            url=job.spec.url,
            final_url=str(selection.info.get("webpage_url") or job.spec.url),
            artifacts=(artifact, *extras),
            bytes_fetched=sum(f.nbytes for f in fetched) + sum(a.size for a in extras),
            resumed_bytes=sum(f.resumed for f in fetched),
            elapsed_s=time.monotonic() - started,
            details={"media": summary},
            sidecars=_sidecars(selection, options, redactor),
            scratch=work,
        )

    async def _info(self, job: JobRun, options: MediaOptions) -> tuple[dict[str, Any], bool]:
        """The job's info dict, and whether it came from the cache."""
        url_key = _url_key(job)
        if self._cache is not None:
            for key in (url_key, *_video_keys(job)):
                if info := await self._cache.get_info(key):
                    _log.debug("info of %s from the cache (%s)", job.spec.url, key)
                    return info, True
        extract_options = ExtractOptions(
            format_spec=format_spec(options.format),
            proxy=job.resources.proxy,
            cookie_file=Path(options.cookies) if options.cookies else None,
            headers=job.headers,
            playlist_items=options.playlist_items,
        )
        info = await self._extracted(job, extract_options)
        if self._cache is not None:
            keys = [url_key]
            if info.get("extractor_key") and info.get("id"):
                keys.append(f"id:{info['extractor_key']}:{info['id']}")
            await self._cache.put_info(keys, info, self._ttl_s)
        return info, False

    async def _extracted(self, job: JobRun, options: ExtractOptions) -> dict[str, Any]:
        """yt-dlp's extraction, let through the engine's request gate as one request (the
        page's host budget and cooldown hold it; its own few requests are yt-dlp's)."""
        ticket = await self._engine.gate.enter(job.spec.url, job.resources.proxy)
        try:
            return await extract(job.spec.url, options)
        except Throttled as exc:
            await ticket.throttled(exc.retry_after_s)
            raise
        finally:
            ticket.close()

    async def _extras(
        self, job: JobRun, options: MediaOptions, selection: Selection, final: Path, work: Path
    ) -> list[Artifact]:
        """Subtitles (``--write-subs``) and the thumbnail (``--write-thumbnail``), staged to be
        renamed beside the video: ``NAME.en.vtt``, ``NAME.jpg``."""
        wanted: list[tuple[str, dict[str, Any], str]] = []
        if options.write_subs:
            for lang, sub in selection.subtitles.items():
                ext = _token(str(sub.get("ext") or "vtt"))
                wanted.append((f"sub.{_token(lang)}.{ext}", sub, f".{_token(lang)}.{ext}"))
        if options.write_thumbnail and (thumbnail := selection.thumbnail):
            ext = _token(Path(urlsplit(thumbnail).path).suffix.lstrip(".") or "jpg")
            wanted.append((f"thumbnail.{ext}", {"url": thumbnail}, f".{ext}"))
        extras = []
        for name, item, suffix in wanted:
            path = await self._fetch_extra(job, item, work, name)
            role = "thumbnail" if name.startswith("thumbnail") else "subtitle"
            beside = final.with_name(final.stem + suffix)
            extras.append(Artifact(beside, path.stat().st_size, role, staged=path))
        return extras

    async def _fetch_extra(self, job: JobRun, item: dict[str, Any], work: Path, name: str) -> Path:
        """One subtitle or thumbnail into ``work``: inline data written, a URL through the
        engine (no progress: they are small beside the video)."""
        if item.get("data") is not None:
            dir_fd = nofollow.open_directory(work)
            try:
                nofollow.replace_text(dir_fd, name, f".{name}.tmp", str(item["data"]))
            finally:
                os.close(dir_fd)
            return work / name
        request = TransferRequest(
            url=str(item["url"]),
            output_dir=work,
            filename=name,
            headers=job.headers,
            connections=1,
            proxy=job.resources.proxy,
        )
        return (await self._engine.download(request)).path

    async def _fetch(self, job: JobRun, fmt: dict[str, Any], work: Path) -> _Fetched:
        """One chosen format into ``work``: direct ones through the engine, others through
        yt-dlp's fragment downloader."""
        name = f"f{_token(str(fmt.get('format_id') or 'best'))}.{_token(str(fmt.get('ext')))}"
        headers = {**(fmt.get("http_headers") or {}), **job.headers}
        if fmt.get("protocol") in DIRECT_PROTOCOLS:
            # yt-dlp hands its own downloaders the cookie file's cookies for this URL itself
            # (never a Cookie header in http_headers); ours gets them as the header.
            cookie = _cookie_for(options_of(job).cookies, str(fmt["url"]))
            if cookie is not None and "Cookie" not in headers:
                headers["Cookie"] = cookie
            request = TransferRequest(
                url=str(fmt["url"]),
                output_dir=work,
                filename=name,
                headers=headers,
                connections=job.options.connections,
                limit_rate_bps=job.options.limit_rate_bps,
                proxy=job.resources.proxy,
                on_existing=OnExisting.RENAME,
            )
            result = await self._engine.download(request, job.progress)
            return _Fetched(result.path, result.bytes_fetched, result.resumed_bytes)
        fragment_options = FragmentOptions(
            concurrency=job.options.connections or self._fragment_concurrency,
            proxy=job.resources.proxy,
            headers=headers,
            limit_rate_bps=job.options.limit_rate_bps,
        )
        path = work / name
        before = _size_of(path.with_name(path.name + ".part"))
        size = await download_fragments(
            {**fmt, "http_headers": headers}, path, fragment_options, job.progress
        )
        return _Fetched(path, max(0, size - before), min(before, size))


async def _combine(selection: Selection, paths: list[Path], work: Path) -> Path:
    """The one file to stage: the only format, the merge of them all, or an HLS download
    (MPEG-TS, whatever its name says) remuxed into the container yt-dlp names."""
    ext = _token(str(selection.info.get("ext") or "mkv"))
    is_hls = any(str(f.get("protocol", "")).startswith("m3u8") for f in selection.formats)
    if not selection.is_merge and not (is_hls and ext != "ts"):
        return paths[0]
    output = work / f"merged.{ext}"
    await merge(paths, output)
    return output


def _playlist(
    job: JobRun, options: MediaOptions, info: dict[str, Any], is_cached: bool, elapsed_s: float
) -> Outcome:
    """A playlist's outcome: no file, its entries as media jobs of their own (the same options;
    keyed by extractor and id when the entry says them, so a video in two playlists is one)."""
    entries = [e for e in info.get("entries") or () if isinstance(e, dict) and e.get("url")]
    if options.max_downloads is not None:
        entries = entries[: options.max_downloads]
    spawned = tuple(_entry_spec(job, options, entry) for entry in entries)
    summary = {
        "extractor": info.get("extractor_key") or info.get("extractor"),
        "id": info.get("id"),
        "title": info.get("title"),
        "entries": len(spawned),
        "info_cached": is_cached,
    }
    return Outcome(
        kind=JobKind.MEDIA,
        url=job.spec.url,
        final_url=str(info.get("webpage_url") or job.spec.url),
        artifacts=(),
        bytes_fetched=0,
        elapsed_s=elapsed_s,
        details={"playlist": summary},
        spawned=spawned,
    )


def _entry_spec(job: JobRun, options: MediaOptions, entry: dict[str, Any]) -> JobSpec:
    extractor, video_id = entry.get("ie_key"), entry.get("id")
    entry_options = options.model_copy(update={"playlist_items": None, "max_downloads": None})
    return job.spec.model_copy(
        update={
            "url": str(entry["url"]),
            "kind": JobKind.MEDIA,
            "media": entry_options,
            "key": f"{extractor}:{video_id}" if extractor and video_id else None,
            "output": None,
        }
    )


def _sidecars(selection: Selection, options: MediaOptions, redactor: Redactor) -> dict[str, str]:
    if not options.info_json:
        return {}
    info = sidecar_info(selection.info, redactor)
    return {".info.json": json.dumps(info, ensure_ascii=False, indent=1)}


def _is_done(final: Path, source: str, job: JobRun) -> bool:
    """True when the final file is there and marked as ``source``'s complete download."""
    if job.options.on_existing is OnExisting.OVERWRITE:
        return False
    try:
        return marks.is_complete(final, marks.url_key(source))
    except OSError:
        return False


def _skipped(job: JobRun, final: Path, summary: dict[str, Any], elapsed_s: float) -> Outcome:
    try:
        size = final.stat().st_size
    except OSError as exc:
        raise LocalError(f"cannot read {final}: {exc.strerror or exc}") from exc
    return Outcome(
        kind=JobKind.MEDIA,
        url=job.spec.url,
        final_url=job.spec.url,
        artifacts=(Artifact(final, size, "media"),),
        bytes_fetched=0,
        elapsed_s=elapsed_s,
        skipped=True,
        details={"media": summary},
    )


def options_of(job: JobRun) -> MediaOptions:
    """The job's media options (the defaults when it gave none)."""
    return job.spec.media or MediaOptions()


def _cookie_for(cookie_file: str | None, url: str) -> str | None:
    """The ``Cookie`` header the cookie file gives ``url`` (checked by the extraction already)."""
    if cookie_file is None:
        return None
    try:
        cookies = load_cookie_file(Path(cookie_file))
    except CookieFileError as exc:
        raise BadRequest(str(exc)) from None
    return cookie_header(cookies, url, time.time())


def _identity(job: JobRun, info: dict[str, Any]) -> str:
    """What a video is, for its file's mark: ``Extractor:id`` (the same for every URL of it),
    else the job's URL."""
    extractor, video_id = info.get("extractor_key"), info.get("id")
    return f"{extractor}:{video_id}" if extractor and video_id else job.spec.url


def _video_keys(job: JobRun) -> tuple[str, ...]:
    """The cache key of the job's video when its URL alone says which (a site extractor's
    pattern gives the id): another URL of the video extracted it, maybe."""
    key = video_key(job.spec.url)
    return (f"id:{key}",) if key else ()


def _url_key(job: JobRun) -> str:
    return f"url:{normalise_url(job.spec.url)}"


def _work_name(job: JobRun) -> str:
    """The job's work directory: the same for every run of one URL (to resume), per URL."""
    return hashlib.sha256(normalise_url(job.spec.url).encode()).hexdigest()[:24]


def _token(text: str) -> str:
    """A format id or extension as a file-name part: letters, digits, ``-`` and ``_``."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]
    return cleaned or "x"


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
