"""Extraction: ``yt_dlp.YoutubeDL`` as a library, in a thread, its messages in our log.

``await extract(url, options)`` runs ``YoutubeDL.extract_info(url, download=False)`` in a worker
thread (``asyncio.to_thread``) so that the event loop keeps serving the other lanes, and
returns the info dict made JSON-safe by ``YoutubeDL.sanitize_info``: formats, the selected
format (``format_id`` or ``requested_formats`` for a merge), id, title, duration and the
rest, as yt-dlp's ``--dump-json`` prints it. A playlist comes back with its ``entries`` listed
but not extracted one by one (``extract_flat='in_playlist'``): each entry is a job of its own.

yt-dlp never writes to stdout or stderr here: every message goes to the ``hauler.media.ytdlp``
logger, without terminal escapes and with the job's secrets masked. Its failures come back as
hauler errors (``hauler.media.errors.classify``). The user's cookie file is read, checked and
handed to yt-dlp as text: yt-dlp writes its cookie jar back on close, and must not rewrite
(or race on) the user's file.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hauler.cookies import Cookie, CookieFileError, load_cookie_file
from hauler.errors import BadRequest
from hauler.media.errors import classify, exception_chain
from hauler.media.formats import DEFAULT_FORMAT
from hauler.redact import Redactor, printable, secret_header_values, url_password

InfoDict = dict[str, Any]

log = logging.getLogger("hauler.media.ytdlp")

DEFAULT_SOCKET_TIMEOUT_S = 20.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Warnings that say nothing to a hauler user: every page the generic extractor reads says so.
_QUIET_WARNINGS = ("Falling back on generic information extractor",)


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """What one extraction may use: a format, a proxy, cookies, headers, timeouts."""

    format_spec: str = DEFAULT_FORMAT  # yt-dlp syntax (``hauler.media.formats.format_spec``)
    proxy: str | None = None  # None: the environment's (http_proxy & co.), as curl does
    cookie_file: Path | None = None  # Netscape format
    headers: Mapping[str, str] = field(default_factory=dict)
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    playlist_items: str | None = None  # yt-dlp's --playlist-items syntax ("1,3-5")
    cache_dir: Path | None = None  # yt-dlp's cache (YouTube player code); None: its default


class YtDlpLogger:
    """yt-dlp's ``logger`` param: its screen, warning and error messages into our log.

    yt-dlp passes info and debug messages alike to ``debug`` (debug ones prefixed ``[debug]``);
    both are DEBUG here, being yt-dlp's chatter ("[generic] Extracting URL: ...")."""

    def __init__(self, redactor: Redactor, target: logging.Logger = log) -> None:
        self._redactor = redactor
        self._log = target

    def debug(self, message: str) -> None:
        """A screen or debug message."""
        self._emit(logging.DEBUG, message)

    def info(self, message: str) -> None:
        """An info message (yt-dlp's own YDLLogger has one; its callers may use it)."""
        self._emit(logging.DEBUG, message)

    def warning(self, message: str) -> None:
        """A warning, demoted to DEBUG for the ones that say nothing to a hauler user."""
        is_quiet = any(quiet in message for quiet in _QUIET_WARNINGS)
        level = logging.DEBUG if is_quiet else logging.WARNING
        self._emit(level, message)

    def error(self, message: str) -> None:
        """An error: DEBUG, since the same failure reaches the caller as the raised error."""
        self._emit(logging.DEBUG, message)

    def _emit(self, level: int, message: str) -> None:
        if self._log.isEnabledFor(level):
            text = printable(self._redactor.text(_ANSI.sub("", str(message)).strip()))
            self._log.log(level, "yt-dlp: %s", text)


async def extract(url: str, options: ExtractOptions | None = None) -> InfoDict:
    """The sanitised info dict of ``url``, extracted in a worker thread; hauler errors."""
    return await asyncio.to_thread(extract_blocking, url, options or ExtractOptions())


def extract_blocking(url: str, options: ExtractOptions) -> InfoDict:
    """``extract`` without the thread: blocks the caller for the whole extraction."""
    import yt_dlp

    cookies = _read_cookies(options.cookie_file)
    redactor = _redactor(url, options, cookies)
    params = _params(options, YtDlpLogger(redactor), cookies)
    ydl = _youtube_dl(params)
    try:
        with ydl:
            info = ydl.extract_info(url, download=False)
            return dict(ydl.sanitize_info(info))
    except (yt_dlp.utils.YoutubeDLError, OSError) as exc:
        _close_responses(exc)
        raise classify(exc, redactor) from exc


def _close_responses(exc: BaseException) -> None:
    """Close the HTTP responses that yt-dlp's errors hold (an HTTPError keeps its response, and
    its socket, open until collected: a worker failing many pages would hold them all)."""
    for inner in exception_chain(exc):
        close = getattr(getattr(inner, "response", None), "close", None)
        if callable(close):
            close()


def _params(options: ExtractOptions, logger: YtDlpLogger, cookies: list[Cookie] | None) -> InfoDict:
    params: InfoDict = {
        "logger": logger,
        "quiet": True,
        "noprogress": True,
        "color": "no_color",
        "format": options.format_spec,
        "extract_flat": "in_playlist",
        "socket_timeout": options.socket_timeout_s,
        "http_headers": dict(options.headers),
    }
    if options.proxy is not None:
        params["proxy"] = options.proxy
    if cookies is not None:
        # A text stream: yt-dlp reads it, and its save on close writes back into the stream.
        params["cookiefile"] = io.StringIO(netscape_text(cookies))
    if options.playlist_items:
        params["playlist_items"] = options.playlist_items
    if options.cache_dir is not None:
        params["cachedir"] = str(options.cache_dir)
    return params


def _youtube_dl(params: InfoDict) -> Any:
    """A ``YoutubeDL``; it parses the format as it is built, before any request: a format its
    parser refuses is the user's to fix."""
    import yt_dlp

    try:
        return yt_dlp.YoutubeDL(params)
    except SyntaxError as exc:
        # yt-dlp adds the spec and a caret under the fault on lines of their own.
        detail = (str(exc).splitlines() or ["invalid"])[0].strip()
        raise BadRequest(f"format {params['format']!r}: {detail}") from None


def _read_cookies(path: Path | None) -> list[Cookie] | None:
    if path is None:
        return None
    try:
        return load_cookie_file(path)
    except CookieFileError as exc:
        raise BadRequest(str(exc)) from None


def netscape_text(cookies: Iterable[Cookie]) -> str:
    """``cookies`` as a Netscape cookie file that yt-dlp's jar reads without a warning."""
    lines = ["# Netscape HTTP Cookie File"]
    for cookie in cookies:
        domain = f".{cookie.domain}" if cookie.include_subdomains else cookie.domain
        fields = (
            domain,
            "TRUE" if cookie.include_subdomains else "FALSE",
            cookie.path,
            "TRUE" if cookie.is_secure else "FALSE",
            str(cookie.expires_at),
            cookie.name,
            cookie.value,
        )
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def _redactor(url: str, options: ExtractOptions, cookies: list[Cookie] | None) -> Redactor:
    secrets = [url_password(url), *secret_header_values(options.headers)]
    if options.proxy:
        secrets.append(url_password(options.proxy))
    secrets += [cookie.value for cookie in cookies or ()]
    return Redactor(s for s in secrets if s)
