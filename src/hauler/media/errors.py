"""yt-dlp's exceptions and messages, classed into hauler's error taxonomy.

yt-dlp raises ``DownloadError`` whose message is the extractor's (``ERROR: [youtube] id: ...``)
and whose ``exc_info`` holds what went wrong underneath: an ``ExtractorError``, an
``HTTPError`` with its status, or a ``TransportError`` around the ``OSError`` of the socket.
The classifier reads the types first and the words second, in this order:

1. a bot wall in the words ("not a bot", CAPTCHA, rate-limited, blocked, consent page) or an
   HTTP 403/429 → ``BotCheck`` (bannable: rotate the account or proxy);
2. another HTTP status: 404 → ``NotFound``, 410 → ``Gone``, other 4xx → ``Forbidden``,
   503 → ``Throttled``, other 5xx → ``Transient``;
3. a certificate failure → ``UntrustedCertificate``; connection refused → ``ConnectionRefused``;
   any other network failure (reset, timeout, DNS, truncated body) → ``ConnectionFailed``;
4. private, removed, unavailable, geo-blocked, login- or age-gated, DRM → ``Forbidden`` or
   ``Gone``; unsupported URL, bad format request → ``BadRequest``;
5. anything else yt-dlp reports → ``Fatal`` with its reason.

Every message is yt-dlp's reason on one line: no ANSI, no ``ERROR:``, no ``[generic]`` tag
(a site's tag such as ``[youtube] id:`` is kept), no ``(caused by ...)`` or bug-report tail.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator

from hauler.errors import (
    BadRequest,
    BotCheck,
    ConnectionFailed,
    ConnectionRefused,
    Fatal,
    Forbidden,
    Gone,
    HaulerError,
    NoMedia,
    NotFound,
    Throttled,
    Transient,
    UntrustedCertificate,
)
from hauler.redact import Redactor, printable, redact_url

MAX_REASON_CHARS = 300
_MAX_CHAIN = 8

_BOT_WALL = re.compile(
    r"(?i)not a bot|captcha|anti-bot|are you a robot|unusual traffic|suspected as a bot"
    r"|requests automated|rate[- ]limit|too many requests|blocked by server"
    r"|fresh cookies|try again later|consent\.(?:youtube|google)\.com|consent (?:page|wall)"
)
_GONE = re.compile(
    r"(?i)video unavailable|been removed|has been deleted|no longer available"
    r"|account .{0,40}terminated|does not exist|content is not available"
)
_FORBIDDEN = re.compile(
    r"(?i)private video|video is private|available (?:in|from) your (?:country|location)"
    r"|geo[- ]?restrict|confirm your age|age[- ]restricted|inappropriate for some users"
    r"|only available for registered users|members[- ]only|requires? (?:a )?(?:login|payment)"
    r"|drm protected|this video is drm"
)
_BAD_REQUEST = re.compile(
    r"(?i)unsupported url|is not a valid url|requested format is not available"
    r"|invalid format specification"
)
_REFUSED = re.compile(r"(?i)connection refused|errno 111\b")
_NETWORK = re.compile(
    r"(?i)connection reset|timed out|timeout|remote end closed|broken pipe|network is unreachable"
    r"|name or service not known|temporary failure in name resolution|nodename nor servname"
    r"|getaddrinfo failed|bytes read|incomplete ?read|connection aborted|eof occurred"
    r"|urlopen error|unable to connect to proxy"
)
_HTTP_STATUS = re.compile(r"HTTP Error (\d{3})")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ERROR_PREFIX = re.compile(r"^(?:ERROR:\s*)+")
_GENERIC_TAG = re.compile(r"^\[generic\]\s*(?:[^\s:]+:\s+)?")
_TAILS = (" (caused by ", "; please report this issue", "; please report this bug")
# yt-dlp's pointers to its wiki ("See  https://...  for how to ...", "Also see  https://...").
_SEE_ALSO = re.compile(r"\s*(?:Also see|See)\s+https?://\S+\s+[^.]*(?:\.|$)")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>\"']+", re.IGNORECASE)


def classify(exc: BaseException, redactor: Redactor | None = None) -> HaulerError:
    """The hauler error for an exception out of yt-dlp (its reason, cleaned, as the message)."""
    chain = list(exception_chain(exc))
    reason = clean_reason(str(exc), redactor)
    status = next((s for s in map(_http_status, chain) if s is not None), None)
    by_type = _by_type(chain, reason)
    if _BOT_WALL.search(reason) or status in (403, 429):
        return BotCheck(reason)
    if status is not None:
        return _by_status(status, reason)
    if by_type is not None:
        return by_type
    return classify_message(reason)


def classify_message(message: str, redactor: Redactor | None = None) -> HaulerError:
    """The hauler error for a yt-dlp error message alone (as it is printed or recorded)."""
    reason = clean_reason(message, redactor)
    match = _HTTP_STATUS.search(message)
    if _BOT_WALL.search(reason):
        return BotCheck(reason)
    if match is not None:
        status = int(match.group(1))
        return BotCheck(reason) if status in (403, 429) else _by_status(status, reason)
    rules: tuple[tuple[re.Pattern[str], Callable[[str], HaulerError]], ...] = (
        (_BAD_REQUEST, BadRequest),
        (_FORBIDDEN, Forbidden),
        (_GONE, Gone),
        (_REFUSED, ConnectionRefused),
        (_NETWORK, ConnectionFailed),
    )
    for pattern, error_type in rules:
        if pattern.search(reason):
            return error_type(reason)
    return Fatal(reason)


def clean_reason(message: str, redactor: Redactor | None = None) -> str:
    """yt-dlp's message on one printable line, without its noise and without secrets."""
    text = _ANSI.sub("", message).strip()
    text = _ERROR_PREFIX.sub("", text)
    text = _GENERIC_TAG.sub("", text)
    for tail in _TAILS:
        text = text.split(tail, 1)[0]
    text = _SEE_ALSO.sub("", text)
    text = " ".join(_sentences(text.splitlines()))
    text = _URL.sub(lambda m: redact_url(m.group()), text)
    if redactor is not None:
        text = redactor.text(text)
    text = printable(text)
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 1] + "…"
    return text or "yt-dlp failed without a reason"


def _sentences(lines: list[str]) -> Iterator[str]:
    """The lines of a message as one text: a line that ends without punctuation gets a full
    stop before the next ("Private video" / "Sign in if ..." → "Private video. Sign in if ...")."""
    kept = [" ".join(line.split()) for line in lines if line.strip()]
    for number, line in enumerate(kept, start=1):
        is_last = number == len(kept)
        yield line if is_last or line.endswith((".", "!", "?", ":", ";", ",")) else line + "."


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what lies under it (yt-dlp's ``exc_info`` and ``cause``, then Python's), at
    most a few deep."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = _under(current)


def _under(exc: BaseException) -> BaseException | None:
    exc_info = getattr(exc, "exc_info", None)
    inner = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None
    if isinstance(inner, BaseException) and inner is not exc:
        return inner
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    return exc.__cause__ or exc.__context__


def _http_status(exc: BaseException) -> int | None:
    """The status of yt-dlp's ``HTTPError`` (``status``) or urllib's (``code``)."""
    if type(exc).__name__ != "HTTPError":
        return None
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    return status if isinstance(status, int) else None


def _by_status(status: int, reason: str) -> HaulerError:
    if status == 404:
        return NotFound(reason)
    if status == 410:
        return Gone(reason)
    if status == 503:
        return Throttled(reason)
    if status >= 500:
        return Transient(reason)
    if status >= 400:
        return Forbidden(reason)
    return Fatal(reason)


def _by_type(chain: list[BaseException], reason: str) -> HaulerError | None:
    """What the exception types alone say (certificate, refused, network, geo, unsupported)."""
    names = {type(e).__name__ for e in chain}
    if "GeoRestrictedError" in names:
        return Forbidden(reason)
    if "UnsupportedError" in names:
        return NoMedia(reason)
    if "CertificateVerifyError" in names or any(
        isinstance(e, ssl.SSLCertVerificationError) for e in chain
    ):
        return UntrustedCertificate(reason)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ConnectionRefused(reason)
    network = {"TransportError", "IncompleteRead", "ProxyError", "SSLError", "URLError"}
    if names & network or any(isinstance(e, OSError | TimeoutError) for e in chain):
        # A refusal wrapped as text only (urllib's "<urlopen error [Errno 111] ...>").
        if _REFUSED.search(reason):
            return ConnectionRefused(reason)
        return ConnectionFailed(reason)
    return None
