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
import hashlib
import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from hauler.config import TransferSettings
from hauler.errors import BadRequest, ConnectionFailed, ProxyFailed
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
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


Resolve = Callable[[str], Awaitable[list[str]]]


async def resolve_host(host: str) -> list[str]:
    """The addresses ``host`` resolves to, as the system resolver answers (the guard's seam:
    tests replace this function to give a test name a public address)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, settings: TransferSettings, resolve: Resolve | None = None) -> None:
    """The URL guard, for the first URL and every redirect hop: an allowed scheme, and (unless
    ``allow_private``) a host whose every address is public.

    The name is resolved here, client-side, also when a proxy (even socks5h, which resolves
    remotely) will carry the request: the guard judges where the name points, not the route.
    With ``allow_private`` it costs no lookup.
    """
    parts = parse_url(url, settings)
    if settings.allow_private:
        return
    host = parts.hostname or ""
    try:
        addresses = [str(ipaddress.ip_address(host.split("%", 1)[0]))]
    except ValueError:  # a name, not an address literal
        try:
            addresses = await (resolve or resolve_host)(host)
        except OSError as exc:
            raise ConnectionFailed(f"cannot resolve {host!r} for {redact_url(url)}") from exc
    for address in addresses:
        if not is_public_address(address):
            raise BadRequest(
                f"refusing {redact_url(url)}: {host} resolves to the non-public address {address}"
            )


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what "same origin" means
    for the secret headers on a redirect."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def proxy_label(proxy: str) -> str:
    """A proxy's name where budgets and listings show it: its host and port and the first hex
    digits of a hash of the whole URL (two logins to one gateway are two exits), never its
    credentials."""
    parts = urlsplit(proxy)
    digest = hashlib.sha256(proxy.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    host = (parts.hostname or "").lower()
    shown = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{shown}:{port}#{digest}" if port else f"{shown}#{digest}"


# The proxy variables curl, wget and yt-dlp read; the lower-case spelling wins over the upper.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def proxy_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The proxy variables of ``environ`` by lower-case name, as curl reads them.

    ``HTTP_PROXY`` in upper case is ignored when ``REQUEST_METHOD`` is set (a CGI script, whose
    ``HTTP_*`` variables come from the client's request headers: "httpoxy"), as curl and Python do.
    """
    chosen: dict[str, str] = {}
    for name in _PROXY_VARIABLES:
        upper = name.upper()
        if upper == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
            upper = name
        value = environ.get(name) or environ.get(upper) or ""
        if value.strip():
            chosen[name] = value.strip()
    return chosen


def env_proxy(url: str, proxy_env: Mapping[str, str]) -> str | None:
    """The proxy the environment (``proxy_environment``) names for ``url``, or None.

    ``https_proxy`` for https URLs, ``http_proxy`` for http ones, else ``all_proxy`` (which may be
    ``socks5://...``); none when ``no_proxy`` matches the host. A proxy written without a scheme
    (``proxy:3128``) is an HTTP proxy, as curl reads it.
    """
    if not proxy_env:  # the common case: no variable set, no parse
        return None
    scheme, host, port = origin_of(url)
    if bypasses_proxy(host, port, proxy_env.get("no_proxy", "")):
        return None
    proxy = proxy_env.get(f"{scheme}_proxy") or proxy_env.get("all_proxy")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def bypasses_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """True when ``no_proxy`` (curl's rules) exempts ``host``/``port`` from the proxy.

    A comma-separated list: ``*`` (everything), domain names matching themselves and their
    sub-domains (a leading dot is optional), IP addresses and CIDR ranges, each optionally with
    ``:port``.
    """
    host = host.strip("[]").lower().rstrip(".")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        name, entry_port = _split_entry(entry)
        if not name or (entry_port is not None and entry_port != port):
            continue
        if _entry_matches(name, host):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``host:port`` / ``[v6]:port`` / ``v6`` / ``net/bits`` → (name, port or None)."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, _, port_text = entry.partition(":")
    else:
        name, port_text = entry, ""
    port = int(port_text) if port_text.isdigit() else None
    return name.rstrip("."), port


def _entry_matches(name: str, host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        domain = name.lstrip(".")
        return host == domain or host.endswith("." + domain)
    try:
        return address in ipaddress.ip_network(name, strict=False)
    except ValueError:
        return False  # a domain entry never matches an address


class Sessions:
    """Shared aiohttp sessions: one direct (also for http/https proxies), one per socks proxy.

    aiohttp's own ``trust_env`` stays off: the proxy environment is read here (``for_url``), with
    curl's ``no_proxy`` rules, and socks proxies from ``all_proxy`` get their session too.
    """

    def __init__(self, settings: TransferSettings, environ: Mapping[str, str] | None = None):
        self._settings = settings
        # Read once: a worker's environment does not change under it.
        self._proxy_env = proxy_environment(os.environ if environ is None else environ)
        self._direct: aiohttp.ClientSession | None = None
        self._socks: dict[str, aiohttp.ClientSession] = {}

    def for_url(self, url: str, proxy: str | None) -> tuple[aiohttp.ClientSession, str | None]:
        """The session and ``proxy=`` argument for a request to ``url``: through ``proxy`` (the
        user's explicit choice) when given, else through the environment's (``env_proxy``)."""
        return self.for_proxy(self.proxy_for(url, proxy))

    def proxy_for(self, url: str, proxy: str | None) -> str | None:
        """The proxy a request to ``url`` goes through: ``proxy``, else the environment's."""
        return proxy or env_proxy(url, self._proxy_env)

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

        # socks5h/socks4a: the proxy resolves names (curl's meaning); the library knows only
        # socks5/socks4 and an rdns flag.
        scheme, sep, rest = proxy.partition("://")
        is_remote_dns = scheme.lower() in ("socks5h", "socks4a")
        base_scheme = scheme.lower().removesuffix("h").removesuffix("a")
        try:
            connector: aiohttp.BaseConnector = ProxyConnector.from_url(
                f"{base_scheme}{sep}{rest}",
                limit=0,
                ttl_dns_cache=self._settings.dns_ttl_s,
                rdns=is_remote_dns,
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


async def probe(sessions: Sessions, url: str, proxy: str, timeout_s: float) -> int:
    """GET ``url`` through ``proxy`` within ``timeout_s``, redirects not followed, the body left
    unread: the answer's status (a proxy's own 407/502 included).

    Raises ``ProxyFailed`` when no answer came (refused, reset, a failed tunnel, the timeout);
    its message shows the proxy with its credentials masked."""
    session, proxy_arg = sessions.for_proxy(proxy)
    shown = redact_url(proxy)
    try:
        async with (
            asyncio.timeout(timeout_s),
            session.get(url, proxy=proxy_arg, allow_redirects=False) as response,
        ):
            return response.status
    except TimeoutError as exc:
        raise ProxyFailed(f"no answer through {shown} within {timeout_s:g} s") from exc
    except Exception as exc:  # aiohttp's and the socks libraries' errors alike: no answer
        raise ProxyFailed(f"no answer through {shown} ({_failure_name(exc)})") from exc


def _failure_name(exc: BaseException) -> str:
    """A failure's class and its status (a proxy refusing a tunnel) or OS reason: never the
    exception's text, which libraries may write the proxy's URL into, credentials and all."""
    status = getattr(exc, "status", None)
    errno = getattr(exc, "errno", None) or getattr(getattr(exc, "os_error", None), "errno", None)
    if isinstance(status, int):
        return f"{type(exc).__name__}: {status}"
    reason = f": {os.strerror(errno)}" if isinstance(errno, int) else ""
    return type(exc).__name__ + reason
