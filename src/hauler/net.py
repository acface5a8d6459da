"""The network edge: the URL guard and the shared aiohttp sessions (one per proxy).

Sessions keep connections alive across files, cache DNS for ``dns_ttl_s`` and never decompress
(hauler stores the origin's bytes as sent). http/https proxies go through aiohttp's ``proxy=``
on the shared session; socks4/socks5 proxies get one session each over aiohttp_socks.
Proxy credentials are never shown: use ``redact_url`` for anything that reaches a log or error.

TLS: every connector gets ``verified_context()``, one certificate-verifying context that loads
the system's trusted CAs (honouring ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) at its first TLS
handshake, not at start-up. aiohttp builds two default contexts when it is imported (~85 ms of
CA loading that a plain-http ``hauler get`` never needs); this module imports aiohttp first and
has them built without CAs, so that anything falling back to aiohttp's default context fails
closed (certificate verify failed) instead of connecting unverified.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import ssl
import sys
from typing import Any
from urllib.parse import SplitResult, urlsplit

from hauler.config import TransferSettings
from hauler.errors import BadRequest, ConnectionFailed
from hauler.redact import redact_url


def _import_aiohttp_without_ca_loading() -> None:
    """Import aiohttp with ``set_default_verify_paths`` a no-op for the duration.

    Its import-time contexts then stay empty of CAs: the verified one rejects every certificate,
    the unverified one never checks any. hauler uses neither (see ``verified_context``).
    """
    if "aiohttp" in sys.modules:
        return
    name = "set_default_verify_paths"
    own = vars(ssl.SSLContext).get(name)  # None: inherited from _ssl._SSLContext
    setattr(ssl.SSLContext, name, _no_verify_paths)
    try:
        import aiohttp  # noqa: F401
    finally:
        if own is None:
            delattr(ssl.SSLContext, name)
        else:
            setattr(ssl.SSLContext, name, own)


def _no_verify_paths(self: ssl.SSLContext) -> None:
    """Stands in for ``SSLContext.set_default_verify_paths`` while aiohttp is imported."""


_import_aiohttp_without_ca_loading()

import aiohttp  # noqa: E402  (after the import above, which it re-uses)

_SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")


class _SystemTrustContext(ssl.SSLContext):
    """A client context that verifies certificates and host names (``PROTOCOL_TLS_CLIENT``:
    ``CERT_REQUIRED``, ``check_hostname``), loading the system's trusted CAs when it first wraps
    a connection. Until then it trusts nothing, so it can only fail closed.
    """

    _has_trust = False

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load_trust()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load_trust()
        return super().wrap_socket(*args, **kwargs)

    def _load_trust(self) -> None:
        if not self._has_trust:
            self.load_default_certs(ssl.Purpose.SERVER_AUTH)
            self._has_trust = True


@functools.cache
def verified_context() -> ssl.SSLContext:
    """The process's one TLS client context: the settings of ``ssl.create_default_context()``
    (certificates and host names verified; CAs loaded at the first handshake), HTTP/1.1 ALPN.
    """
    context = _SystemTrustContext(ssl.PROTOCOL_TLS_CLIENT)
    if not (context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname):
        raise RuntimeError("TLS client context does not verify certificates")
    keylog_file = os.environ.get("SSLKEYLOGFILE")
    if keylog_file and not sys.flags.ignore_environment:
        context.keylog_filename = keylog_file
    context.set_alpn_protocols(("http/1.1",))
    return context


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
            ssl=verified_context(),
        )

    def _socks_connector(self, proxy: str) -> aiohttp.BaseConnector:
        from aiohttp_socks import ProxyConnector

        try:
            connector: aiohttp.BaseConnector = ProxyConnector.from_url(
                proxy,
                limit=0,
                ttl_dns_cache=self._settings.dns_ttl_s,
                rdns=True,
                ssl=verified_context(),
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
