"""The network edge: the URL guard and the shared aiohttp sessions (one per proxy).

Sessions keep connections alive across files, cache DNS for ``dns_ttl_s`` and never decompress
(hauler stores the origin's bytes as sent). http/https proxies go through aiohttp's ``proxy=``
on the shared session; socks4/socks5 proxies get one session each over aiohttp_socks.
Proxy credentials are never shown: use ``redact_url`` for anything that reaches a log or error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit, urlunsplit

import aiohttp

from hauler.config import TransferSettings
from hauler.errors import BadRequest, ConnectionFailed

_SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (user names are kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def parse_url(url: str, settings: TransferSettings) -> SplitResult:
    """Check the URL's syntax and scheme; ``BadRequest`` with a clear message otherwise."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise BadRequest(f"not a valid URL: {redact_url(url)} ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in settings.allowed_schemes:
        allowed = ", ".join(settings.allowed_schemes)
        raise BadRequest(
            f"unsupported URL scheme {scheme!r} in {redact_url(url)} (allowed: {allowed})"
        )
    if not parts.hostname:
        raise BadRequest(f"URL has no host: {redact_url(url)}")
    return parts


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def check_url(url: str, settings: TransferSettings) -> None:
    """The URL guard: allowed scheme, and (unless ``allow_private``) a public host only."""
    parts = parse_url(url, settings)
    if settings.allow_private:
        return
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectionFailed(f"cannot resolve {host!r} for {redact_url(url)}") from exc
    for info in infos:
        address = str(info[4][0])
        if not is_public_address(address):
            raise BadRequest(
                f"refusing {redact_url(url)}: {host} resolves to the non-public address {address}"
            )


class Sessions:
    """Shared aiohttp sessions: one direct (also for http/https proxies), one per socks proxy."""

    def __init__(self, settings: TransferSettings) -> None:
        self._settings = settings
        self._direct: aiohttp.ClientSession | None = None
        self._socks: dict[str, aiohttp.ClientSession] = {}

    def for_proxy(self, proxy: str | None) -> tuple[aiohttp.ClientSession, str | None]:
        """The session to use with ``proxy`` and the ``proxy=`` argument to pass with requests."""
        if proxy and urlsplit(proxy).scheme.lower() in _SOCKS_SCHEMES:
            session = self._socks.get(proxy)
            if session is None:
                session = self._socks[proxy] = self._new_session(self._socks_connector(proxy))
            return session, None
        if self._direct is None:
            self._direct = self._new_session(self._tcp_connector())
        return self._direct, proxy or None

    async def close(self) -> None:
        """Close every session and its connections."""
        sessions = [*self._socks.values(), *([self._direct] if self._direct else [])]
        self._direct, self._socks = None, {}
        for session in sessions:
            await session.close()

    def _tcp_connector(self) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._settings.pool_per_host,
            ttl_dns_cache=self._settings.dns_ttl_s,
            keepalive_timeout=30.0,
        )

    def _socks_connector(self, proxy: str) -> aiohttp.BaseConnector:
        from aiohttp_socks import ProxyConnector

        try:
            connector: aiohttp.BaseConnector = ProxyConnector.from_url(
                proxy, limit=0, ttl_dns_cache=self._settings.dns_ttl_s, rdns=True
            )
        except ValueError as exc:
            raise BadRequest(f"bad proxy URL {redact_url(proxy)}") from exc
        return connector

    def _new_session(self, connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._settings.connect_timeout_s,
            sock_read=self._settings.read_timeout_s,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            headers={"User-Agent": self._settings.user_agent},
            read_bufsize=self._settings.block_bytes,
        )
