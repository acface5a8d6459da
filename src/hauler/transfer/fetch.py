"""One GET (ranged or not): status checks, Content-Range checks, aiohttp errors mapped.

This is the engine's I/O boundary: aiohttp exceptions and HTTP statuses become the hauler.errors
taxonomy here, with messages naming the (redacted) URL and the status.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import aiohttp
import yarl

from hauler.botwall import MAX_PAGE_BYTES, is_bot_wall
from hauler.clock import Clock
from hauler.config import TransferSettings
from hauler.errors import (
    BadRequest,
    BotCheck,
    ConnectionFailed,
    ConnectionRefused,
    Forbidden,
    Gone,
    HaulerError,
    InvalidResponse,
    NotFound,
    OriginChanged,
    ProxyFailed,
    RangeIgnored,
    Stalled,
    Throttled,
    Transient,
    UntrustedCertificate,
)
from hauler.gate import OPEN, OPEN_TICKET, RequestGate, Ticket
from hauler.net import Sessions, check_url, origin_of
from hauler.redact import Redactor, is_secret_header, printable, redact_url, url_password
from hauler.transfer.body import Body, RangeAsk, Reply
from hauler.transfer.partfile import Validators

# The longest piece of a library's error message quoted in ours.
BRIEF_CHARS = 120
# How many redirects one open follows: aiohttp's default (wget allows 20, curl 50).
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_FORBIDDEN_IN_HEADER = re.compile(r"[\r\n\x00]")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def retry_after_s(value: str | None, clock: Clock, cap_s: float) -> float | None:
    """A Retry-After header (seconds or an HTTP-date) as seconds from now, capped at ``cap_s``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(cap_s, float(value))
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return min(cap_s, max(0.0, when - clock.now()))


def status_error(status: int, url: str, retry_after: float | None) -> HaulerError:
    """The taxonomy's error for an HTTP status that is not 200/206."""
    where = f"{redact_url(url)} answered {status}"
    if status == 404:
        return NotFound(f"{where} Not Found")
    if status == 410:
        return Gone(f"{where} Gone")
    if status in (401, 403):
        return Forbidden(f"{where}: access refused")
    if status in (429, 503):
        return Throttled(f"{where}: throttled", retry_after_s=retry_after)
    if status == 416:
        return OriginChanged(f"{where}: range not satisfiable (the file shrank?)")
    if status in (408, 425) or status >= 500:
        return Transient(f"{where}: server error", retry_after_s=retry_after)
    if 400 <= status < 500:
        return Forbidden(f"{where}: the request was refused")
    return ConnectionFailed(f"{where}: unexpected status")


def client_error(exc: BaseException, url: str, proxy: str | None = None) -> HaulerError:
    """An aiohttp/OS exception as the taxonomy's error (``proxy``: the one the request used)."""
    where = redact_url(url)
    if isinstance(exc, aiohttp.InvalidURL):
        return BadRequest(f"not a valid URL: {where}")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return BadRequest(f"too many redirects from {where}")
    if proxy is not None and _is_proxy_failure(exc, proxy):
        # Retried as any connection failure, and counted against the proxy alone.
        return ProxyFailed(f"{where}: {_proxy_failure(exc, proxy)}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        # Retrying cannot make a certificate trusted: fail at once, naming the reason.
        return UntrustedCertificate(f"{where}: {exc.certificate_error}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ConnectionFailed(f"{where}: cannot resolve {exc.host} ({_reason(exc.os_error)})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        error_type = ConnectionRefused if refused else ConnectionFailed
        return error_type(
            f"{where}: cannot connect to {exc.host}:{exc.port} ({_reason(exc.os_error)})"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionFailed(f"{where}: the server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ConnectionFailed(f"{where}: the body was cut short ({_brief(str(exc))})")
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser refused the answer; its message quotes the server's bytes (20 KB of
        # them after a body longer than its Content-Length): keep only its first line.
        return InvalidResponse(f"{where}: the answer is not valid HTTP ({_brief(exc.message)})")
    if isinstance(exc, TimeoutError):
        return Stalled(f"{where}: no data within the read timeout")
    return ConnectionFailed(f"{where}: {type(exc).__name__}: {_brief(str(exc))}")


def _brief(text: str) -> str:
    """The first line of a library's message, at most ``BRIEF_CHARS``, escaped: such text
    may quote what the server sent."""
    line = text.strip().split("\n", 1)[0].rstrip(" :")
    if len(line) > BRIEF_CHARS:
        line = line[: BRIEF_CHARS - 1] + "…"
    return printable(line)


def _is_proxy_failure(exc: BaseException, proxy: str) -> bool:
    """The proxy, not the origin, failed: aiohttp's proxy errors, a connection error naming the
    proxy's host (its name did not resolve), or the socks libraries' errors (raw or wrapped by
    aiohttp's connector)."""
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return True
    if isinstance(exc, aiohttp.ClientConnectorError) and (
        is_socks_error(exc.os_error) or exc.host == urlsplit(proxy).hostname
    ):
        return True
    return is_socks_error(exc)


def _proxy_failure(exc: BaseException, proxy: str) -> str:
    """What went wrong with ``proxy``, its credentials masked (libraries may quote them)."""
    shown = redact_url(proxy)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"the proxy {shown} refused the request ({exc.status} {printable(exc.message)})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    # The socks libraries wrap the socket's error; an errno says what happened plainly.
    for error in (exc, exc.__cause__):
        if isinstance(error, socket.gaierror):
            return f"cannot resolve the proxy {shown} ({_reason(error)})"
        if isinstance(error, OSError) and error.errno and error.errno < 0:  # a getaddrinfo code
            return f"cannot resolve the proxy {shown}"
        if isinstance(error, OSError) and error.errno:
            return f"cannot connect to the proxy {shown} ({os.strerror(error.errno)})"
    detail = Redactor([url_password(proxy)]).text(_brief(str(exc)) or type(exc).__name__)
    return f"the proxy {shown} failed ({detail})"


def _reason(error: OSError) -> str:
    """What went wrong, in the system's words ("Connection refused"), without asyncio's
    "Connect call failed (...)" wrapping.
    """
    if isinstance(error, socket.gaierror) or not error.errno:
        return error.strerror or str(error) or type(error).__name__
    return os.strerror(error.errno)


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


def parse_reply(resp: aiohttp.ClientResponse, ask: RangeAsk) -> Reply:
    """Check a 200/206 answer against ``ask`` and describe it."""
    headers = resp.headers
    length = _header_int(headers, "Content-Length")
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        length = None
    start, total = 0, length
    if resp.status == 206:
        match = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != ask.start:
            raise RangeIgnored(f"{redact_url(ask_url(resp))}: bad Content-Range for {ask}")
        start, last = int(match.group(1)), int(match.group(2))
        total = None if match.group(3) == "*" else int(match.group(3))
        if length is not None and length != last - start + 1:
            raise ConnectionFailed(
                f"{redact_url(ask_url(resp))}: Content-Length disagrees with Content-Range"
            )
        length = last - start + 1
    last_modified = headers.get("Last-Modified")
    validators = Validators(
        total,
        headers.get("ETag"),
        last_modified,
        has_strong_date=is_strong_date(last_modified, headers.get("Date")),
    )
    return Reply(
        status=resp.status,
        final_url=str(resp.url),
        start=start,
        length=length,
        validators=validators,
        accepts_ranges=resp.status == 206 or "bytes" in headers.get("Accept-Ranges", "").lower(),
        content_disposition=headers.get("Content-Disposition"),
        content_type=headers.get("Content-Type"),
    )


def is_strong_date(last_modified: str | None, date: str | None) -> bool:
    """Last-Modified is a strong validator: at least a second before the response's Date
    (RFC 9110 8.8.2.2). Without a Date it cannot be told, and it is taken as strong, as
    before (a server that disagrees answers If-Range with 200, which the engine handles)."""
    if last_modified is None or date is None:
        return True
    try:
        modified_at = parsedate_to_datetime(last_modified).timestamp()
        answered_at = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return True
    return answered_at - modified_at >= 1.0


def _is_empty_file(resp: aiohttp.ClientResponse, ask: RangeAsk | None) -> bool:
    """A 416 to ``bytes=0-`` with ``Content-Range: bytes */0``: the file is empty."""
    content_range = resp.headers.get("Content-Range", "").replace(" ", "")
    return ask is not None and ask.start == 0 and content_range == "bytes*/0"


def _empty_reply(resp: aiohttp.ClientResponse) -> Reply:
    headers = resp.headers
    return Reply(
        status=200,
        final_url=str(resp.url),
        start=0,
        length=0,
        validators=Validators(0, headers.get("ETag"), headers.get("Last-Modified")),
        accepts_ranges=False,
        content_disposition=headers.get("Content-Disposition"),
        content_type=headers.get("Content-Type"),
    )


def ask_url(resp: aiohttp.ClientResponse) -> str:
    """The URL a response came from (after redirects)."""
    return str(resp.url)


class GatedBody:
    """A body that closes its gate ticket when it ends: read to the end, failed, closed or
    aborted (the host's connection slot frees)."""

    __slots__ = ("_body", "_ticket")

    def __init__(self, body: Body, ticket: Ticket) -> None:
        self._body = body
        self._ticket = ticket

    async def read(self) -> bytes:
        try:
            data = await self._body.read()
        except BaseException:
            self._ticket.close()
            raise
        if not data:
            self._ticket.close()
        return data

    def close(self) -> None:
        self._body.close()
        self._ticket.close()

    def abort(self) -> None:
        self._body.abort()
        self._ticket.close()


class AiohttpBody:
    """A response's body through aiohttp (``body.Body``): aiohttp's errors mapped here."""

    __slots__ = ("_readany", "_resp")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self._readany = resp.content.readany

    async def read(self) -> bytes:
        try:
            return await self._readany()
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise client_error(exc, str(self._resp.url)) from exc

    def close(self) -> None:
        self._resp.close()

    def abort(self) -> None:
        self._resp.content.set_exception(aiohttp.ClientPayloadError("stopped by hauler"))
        self._resp.close()


@dataclass(frozen=True, slots=True)
class AiohttpFetcher:
    """``body.Fetcher`` through aiohttp: opens GETs with the request's headers through its
    proxy, following redirects itself.

    Every redirect hop passes the URL guard (``net.check_url``: the allowed schemes, and no
    private address unless ``allow_private``) before it is contacted; the secret headers
    (``redact.is_secret_header``: Authorization, Cookie, API keys) go only to the origin of
    ``home_url``, as curl treats Authorization. ``proxy`` is the user's explicit proxy; without
    one, each hop goes through the one the environment names for it (``http_proxy``, ...).
    """

    sessions: Sessions
    headers: Mapping[str, str]
    proxy: str | None
    clock: Clock
    settings: TransferSettings
    home_url: str
    gate: RequestGate = OPEN

    def __post_init__(self) -> None:
        check_header_values(self.headers)

    async def open(self, url: str, ask: RangeAsk | None) -> tuple[Body, Reply]:
        """GET ``url`` for ``ask`` (None: the whole file, no Range), following up to
        ``MAX_REDIRECTS`` redirects; a 200/206 answer's body, unread, and what it says
        (``final_url``: the last hop's)."""
        for hop in range(MAX_REDIRECTS + 1):
            ticket = await self.gate.enter(url, self.sessions.proxy_for(url, self.proxy))
            try:
                resp = await self._get(url, ask)
                target = redirect_target(resp, url)
                if target is None:
                    return await self._final(resp, url, ask, ticket)
            except BaseException:
                ticket.close()
                raise
            resp.release()
            ticket.close()
            if hop == MAX_REDIRECTS:
                break
            await self._check_hop(url, target, hop + 1)
            url = target
        raise BadRequest(f"too many redirects (more than {MAX_REDIRECTS}) from {redact_url(url)}")

    async def _final(
        self, resp: aiohttp.ClientResponse, url: str, ask: RangeAsk | None, ticket: Ticket
    ) -> tuple[Body, Reply]:
        """The last hop's answer; a 429/503 tells the gate first (the host cools before the
        error goes up), and the body keeps the ticket until it ends."""
        if resp.status in (429, 503):
            await ticket.throttled(self._retry_after(resp))
        await self._refused(resp, url)
        body, reply = self._answer(resp, url, ask)
        return (body if ticket is OPEN_TICKET else GatedBody(body, ticket)), reply

    def _retry_after(self, resp: aiohttp.ClientResponse) -> float | None:
        return retry_after_s(
            resp.headers.get("Retry-After"), self.clock, self.settings.max_retry_after_s
        )

    async def _get(self, url: str, ask: RangeAsk | None) -> aiohttp.ClientResponse:
        session, proxy_arg = self.sessions.for_url(url, self.proxy)
        headers = {**self._headers_for(url), **(ask.headers() if ask is not None else {})}
        target = _credentials_yield_to_header(url, headers)
        try:
            return await session.get(
                target, headers=headers, proxy=proxy_arg, allow_redirects=False
            )
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise client_error(exc, url, self.sessions.proxy_for(url, self.proxy)) from exc
        except Exception as exc:
            if not is_socks_error(exc):
                raise
            raise client_error(exc, url, self.sessions.proxy_for(url, self.proxy)) from exc

    def _headers_for(self, url: str) -> Mapping[str, str]:
        """The request's headers, without the secret ones when ``url`` is another origin."""
        if url == self.home_url or origin_of(url) == origin_of(self.home_url):
            return self.headers
        return {k: v for k, v in self.headers.items() if not is_secret_header(k)}

    async def _check_hop(self, source: str, target: str, hop: int) -> None:
        """The URL guard on a redirect target; ``BadRequest`` naming the hop when it fails."""
        try:
            await check_url(target, self.settings)
        except BadRequest as exc:
            # The target is the server's text: escaped here, in the stored message too.
            where = f"redirect {hop} from {redact_url(source)} to {redact_url(target)}"
            raise BadRequest(printable(f"{where} refused: {exc.message}")) from exc

    async def _refused(self, resp: aiohttp.ClientResponse, url: str) -> None:
        """Raise what a refusal really is: ``ProxyFailed`` for a 407 (only a proxy sends it),
        ``BotCheck`` for a 403/429 web page that reads as a bot wall (the start of its body is
        read for the signs); other answers go on to ``_answer``."""
        proxy = self.sessions.proxy_for(url, self.proxy)
        if resp.status == 407 and proxy is not None:
            resp.release()
            raise ProxyFailed(
                f"{redact_url(url)}: the proxy {redact_url(proxy)} refused the credentials (407)"
            )
        if resp.status not in (403, 429) or "html" not in resp.headers.get("Content-Type", ""):
            return
        try:
            page = await resp.content.read(MAX_PAGE_BYTES)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            resp.close()
            raise client_error(exc, url, proxy) from exc
        if is_bot_wall(page.decode("utf-8", "replace")):
            resp.close()
            raise BotCheck(f"{redact_url(url)} answered {resp.status} with a bot wall")

    def _answer(
        self, resp: aiohttp.ClientResponse, url: str, ask: RangeAsk | None
    ) -> tuple[Body, Reply]:
        """The final (non-redirect) answer: its Reply, or the taxonomy's error for its status."""
        if resp.status == 416 and _is_empty_file(resp, ask):
            resp.release()
            return AiohttpBody(resp), _empty_reply(resp)
        if resp.status not in (200, 206):
            retry = self._retry_after(resp)
            resp.release()
            raise status_error(resp.status, url, retry)
        try:
            reply = parse_reply(resp, ask or RangeAsk())
        except HaulerError:
            resp.close()
            raise
        return AiohttpBody(resp), reply


def _credentials_yield_to_header(url: str, headers: Mapping[str, str]) -> str | yarl.URL:
    """``url`` as aiohttp should get it: an explicit Authorization header wins over the URL's
    ``user:password@`` (as with curl), instead of aiohttp refusing the pair with a ValueError."""
    if "@" not in url or not any(name.lower() == "authorization" for name in headers):
        return url
    parsed = yarl.URL(url)
    return parsed.with_user(None) if parsed.user is not None else url


def redirect_target(resp: aiohttp.ClientResponse, url: str) -> str | None:
    """The absolute URL a redirect points to, or None when ``resp`` is not a redirect.

    Every hop is a GET (301/302/303 for a GET stay GET; 307/308 keep the method anyway).
    """
    if resp.status not in _REDIRECTS:
        return None
    location = resp.headers.get("Location")
    if not location:
        return None
    return urljoin(url, location.strip())


def check_header_values(headers: Mapping[str, str]) -> None:
    """``BadRequest`` for a header whose value holds CR, LF or NUL (a request splitting attempt,
    or a pasted value gone wrong): no retry can send it. The message names the header, and its
    value only when it is not a secret."""
    for name, value in headers.items():
        if _FORBIDDEN_IN_HEADER.search(name) or _FORBIDDEN_IN_HEADER.search(value):
            shown = "" if is_secret_header(name) else f": {printable(value)!r}"
            raise BadRequest(
                f"header {printable(name)!r} holds a line break or NUL{shown}; "
                "a header value must be one line"
            )


def is_socks_error(exc: BaseException) -> bool:
    """True for the socks libraries' errors (python_socks, aiohttp_socks), without importing
    them."""
    return type(exc).__module__.split(".", 1)[0] in ("python_socks", "aiohttp_socks")
