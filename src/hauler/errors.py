"""The HaulerError tree, split by what the caller does next.

::

    HaulerError
    ├── Transient               retry later (optionally after ``retry_after_s``)
    │   ├── Throttled           429/503: the origin asked us to slow down
    │   ├── ConnectionFailed    reset, refused, DNS, TLS, truncated body
    │   │   └── ConnectionRefused  nothing listens there (not retried on first contact)
    │   ├── Stalled             below the lowest-speed limit for too long
    │   └── StoreUnavailable    the job store (SQLite/Redis) cannot be reached
    ├── Bannable                rotate a resource (proxy or account), then retry
    │   └── BotCheck            a bot wall: "confirm you're not a bot", CAPTCHA, 403/429 on a page
    ├── RestartTransfer         the partial file is useless: start the transfer over
    │   ├── OriginChanged       validators (ETag/Last-Modified/size) differ from the partial's
    │   └── RangeIgnored        the origin answered 200 to a Range request mid-file
    ├── Fatal                   give up now, with a clear reason
    │   ├── BadRequest          a URL or option the user must fix (scheme, syntax, private address)
    │   ├── NotFound            404
    │   ├── Gone                410
    │   ├── Forbidden           401/403 and other 4xx the origin will keep answering
    │   ├── TooLarge            over a configured size limit
    │   ├── ContentMismatch     size or checksum differ after a complete download
    │   ├── UntrustedCertificate  TLS: the server's certificate does not verify
    │   └── LocalError          disk full, permission denied, unwritable output directory
    │       └── DiskFull        no space left (the worker retries it later and waits for room)
    └── LeaseLost               this worker's fencing token is no longer current

Library exceptions (aiohttp, redis, sqlite3, OSError) are mapped to these at the I/O
boundary with ``raise ... from exc``; nothing above that boundary parses error strings.
Each class's docstring is its default message.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    """The short class name stored with a failed job and used by ``requeue --reason``."""

    TRANSIENT = "transient"
    THROTTLED = "throttled"
    CONNECTION = "connection"
    NO_RESOURCE = "no_resource"  # every proxy or account resting, banned or busy: wait
    PROXY = "proxy"  # the proxy itself failed (refused, reset, 407): rotate the proxy
    STALLED = "stalled"
    STORE = "store"
    BANNABLE = "bannable"
    BOT_CHECK = "bot_check"
    ORIGIN_CHANGED = "origin_changed"
    RANGE_IGNORED = "range_ignored"
    FATAL = "fatal"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    GONE = "gone"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    CONTENT_MISMATCH = "content_mismatch"
    CONTENT = "content"  # a media file ffprobe rejects: fetched again, never marked done
    LOCAL = "local"
    CERTIFICATE = "certificate"
    LOST = "lost"  # the job's worker died MAX_LOST_LEASES times while running it
    LEASE_LOST = "lease_lost"
    CANCELLED = "cancelled"


class HaulerError(Exception):
    """hauler failed."""

    error_class: ErrorClass = ErrorClass.FATAL

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or type(self).__name__).strip().splitlines()[0]
        super().__init__(self.message)


class Transient(HaulerError):
    """A temporary failure; trying again later may succeed."""

    error_class = ErrorClass.TRANSIENT

    def __init__(self, message: str | None = None, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Throttled(Transient):
    """The origin is throttling us (429/503)."""

    error_class = ErrorClass.THROTTLED


class ConnectionFailed(Transient):
    """The connection to the origin failed."""

    error_class = ErrorClass.CONNECTION


class ProxyFailed(ConnectionFailed):
    """The proxy, not the origin, failed: it could not be reached, it refused the connection
    or the credentials (407), or its tunnel set-up failed. Retried through another proxy; the
    pools count it against the proxy alone."""

    error_class = ErrorClass.PROXY


class ConnectionRefused(ConnectionFailed):
    """Nothing accepts connections at the origin's address and port."""


class InvalidResponse(ConnectionFailed):
    """The server's answer is not valid HTTP (e.g. more body bytes than its Content-Length)."""


class Stalled(Transient):
    """The transfer stalled below the lowest-speed limit."""

    error_class = ErrorClass.STALLED


class StoreUnavailable(Transient):
    """The job store cannot be reached; check that it is running and the --store URL."""

    error_class = ErrorClass.STORE


class Bannable(HaulerError):
    """The origin refused this proxy or account; rotate it and try again."""

    error_class = ErrorClass.BANNABLE

    def __init__(self, message: str | None = None, *, resource: str = "proxy") -> None:
        super().__init__(message)
        self.resource = resource


class BotCheck(Bannable):
    """The site took us for a bot (sign-in wall, CAPTCHA, 403/429); rotate the account or proxy."""

    error_class = ErrorClass.BOT_CHECK

    def __init__(self, message: str | None = None, *, resource: str = "account") -> None:
        # The account goes first: the pools ban a proxy only when several accounts fail on it.
        super().__init__(message, resource=resource)


class RestartTransfer(HaulerError):
    """The partial download cannot be continued; the transfer must start over."""

    error_class = ErrorClass.TRANSIENT


class OriginChanged(RestartTransfer):
    """The remote file changed since the partial download began."""

    error_class = ErrorClass.ORIGIN_CHANGED


class RangeIgnored(RestartTransfer):
    """The origin ignored a Range request in the middle of the file."""

    error_class = ErrorClass.RANGE_IGNORED


class Fatal(HaulerError):
    """A permanent failure; retrying will not help."""

    error_class = ErrorClass.FATAL


class BadRequest(Fatal):
    """The URL or an option is invalid."""

    error_class = ErrorClass.BAD_REQUEST


class NotFound(Fatal):
    """The origin answered 404 Not Found."""

    error_class = ErrorClass.NOT_FOUND


class Gone(Fatal):
    """The origin answered 410 Gone."""

    error_class = ErrorClass.GONE


class Forbidden(Fatal):
    """The origin refused access (401/403)."""

    error_class = ErrorClass.FORBIDDEN


class TooLarge(Fatal):
    """The file is larger than the configured limit."""

    error_class = ErrorClass.TOO_LARGE


class ContentMismatch(Fatal):
    """The downloaded content does not match the expected size or checksum."""

    error_class = ErrorClass.CONTENT_MISMATCH


class NotAFile(HaulerError):
    """An ``auto`` job's URL answered with a web page or a streaming manifest, not a file: the
    pipeline runs it as a media job instead (nothing was written)."""

    error_class = ErrorClass.BAD_REQUEST

    def __init__(self, content_type: str) -> None:
        super().__init__(f"the URL answers {content_type}: a page or manifest, not a file")
        self.content_type = content_type


class NoMedia(BadRequest):
    """yt-dlp finds no video or audio at the URL (no extractor, not even the generic one, can
    read it): an ``auto`` job that was a guess at media is a plain file after all."""


class BadMedia(Transient):
    """A media file ffprobe cannot read, or without the streams or duration its format promised
    (a truncated fragment, a failed merge): removed, and the job is tried again."""

    error_class = ErrorClass.CONTENT


class UntrustedCertificate(Fatal):
    """The server's TLS certificate does not verify (unknown CA, wrong host name, expired)."""

    error_class = ErrorClass.CERTIFICATE


class LocalError(Fatal):
    """A local failure: disk full, permission denied or an unwritable output directory."""

    error_class = ErrorClass.LOCAL


class DiskFull(LocalError):
    """No space left on the output disk (full, or over quota)."""


class LeaseLost(HaulerError):
    """This worker no longer holds the job's lease; another worker owns it now."""

    error_class = ErrorClass.LEASE_LOST


class Interrupted(HaulerError):
    """The job was asked to stop before its end (a worker's SIGTERM, ``hauler stop``, Ctrl-C)
    and stopped cleanly, what it had finished in place: give it back to the queue, uncounted."""

    error_class = ErrorClass.CANCELLED


class NotLive(Transient):
    """The room is not live now (offline, upcoming, the stream ended): poll it again later."""


class NoResource(Transient):
    """A pool has proxies or accounts, but none usable now (resting, banned, disabled or all
    busy): the job waits until the first comes back (``retry_after_s``)."""

    error_class = ErrorClass.NO_RESOURCE
