"""The kinds this hauler runs, each with its handler, in one ``Resolver``: the composition that
``get`` and the worker share (so that both run every kind the same way)."""

from __future__ import annotations

from urllib.parse import urlsplit

from hauler.models import JobKind
from hauler.pipeline.file import FileHandler
from hauler.pipeline.resolve import Resolver
from hauler.store.base import InfoCache
from hauler.transfer.engine import Engine

MANIFEST_SUFFIXES = (".m3u8", ".mpd")


def resolver_for(engine: Engine, cache: InfoCache | None = None) -> Resolver:
    """Every kind there is a handler for: files on ``engine``; media too when yt-dlp is
    installed (the ``media`` extra), its infos cached in ``cache``."""
    resolver = Resolver()
    from hauler.pipeline.live import LiveHandler

    resolver.register(JobKind.LIVE, LiveHandler(engine, cache=cache))
    try:
        from hauler.media.claims import claims
        from hauler.pipeline.media import MediaHandler
    except ImportError:  # no yt-dlp: media jobs fail with a one-line reason, files run
        resolver.register(JobKind.FILE, FileHandler(engine))
        return resolver
    resolver.register(JobKind.FILE, FileHandler(engine, pages_are_media=True))
    resolver.register(
        JobKind.MEDIA,
        MediaHandler(engine, cache),
        recognizes=lambda url: is_manifest(url) or (not has_extension(url) and claims(url)),
    )
    return resolver


def is_manifest(url: str) -> bool:
    """True for a URL whose path names an HLS or DASH manifest."""
    return urlsplit(url).path.lower().endswith(MANIFEST_SUFFIXES)


def has_extension(url: str) -> bool:
    """True when the URL's last path segment has an extension (``.bin``, ``.mp4``, ``.html``):
    such a URL is not asked of the ~1,800 extractors (3-4 ms a URL, which a batch of small
    files cannot afford, and 0.3 s to build them for the first). A page behind it is still
    found by its probe (``NotAFile``) and runs as media; video sites' URLs have none
    (``/watch?v=…``, ``/video/BV…``)."""
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    _, dot, ext = last.rpartition(".")
    return bool(dot) and bool(ext)
