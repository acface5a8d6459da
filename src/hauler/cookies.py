"""Netscape cookie files (``cookies.txt``, as curl, wget, aria2c and yt-dlp read and write them).

One cookie a line, seven fields separated by tabs: domain, include-subdomains (``TRUE``/
``FALSE``), path, secure (``TRUE``/``FALSE``), expiry (epoch seconds, 0 for a session cookie),
name, value. Blank lines and ``#`` comments are skipped, except ``#HttpOnly_`` which prefixes the
domain of an HttpOnly cookie (curl writes it). Pure parsing and matching: no I/O but the file
read, time passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HTTP_ONLY_PREFIX = "#HttpOnly_"
_FIELDS = 7
_FLAGS = {"TRUE": True, "FALSE": False}


class CookieFileError(ValueError):
    """A cookie file that cannot be read or parsed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Cookie:
    """One cookie of a Netscape cookie file."""

    domain: str  # lower-case, without a leading dot
    include_subdomains: bool
    path: str
    is_secure: bool
    expires_at: int  # epoch seconds; 0: a session cookie, which never expires here
    name: str
    value: str

    def matches(self, scheme: str, host: str, path: str, now: float) -> bool:
        """True when this cookie goes with a request to ``scheme://host/path`` at ``now``."""
        if self.expires_at and self.expires_at <= now:
            return False
        if self.is_secure and scheme != "https":
            return False
        return _domain_matches(self.domain, self.include_subdomains, host) and _path_matches(
            self.path, path
        )


def _domain_matches(domain: str, include_subdomains: bool, host: str) -> bool:
    if host == domain:
        return True
    return include_subdomains and host.endswith("." + domain)


def _path_matches(cookie_path: str, path: str) -> bool:
    """RFC 6265 5.1.4: the same path, or a path below it at a ``/`` boundary."""
    if path == cookie_path or not cookie_path:
        return True
    if not path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or path[len(cookie_path)] == "/"


def parse_cookie_line(line: str) -> Cookie | None:
    """The cookie on one line, None for a blank line or comment; ``ValueError`` when bad."""
    text = line.rstrip("\r\n")
    if text.startswith(HTTP_ONLY_PREFIX):
        text = text[len(HTTP_ONLY_PREFIX) :]
    elif not text.strip() or text.lstrip().startswith("#"):
        return None
    fields = text.split("\t")
    if len(fields) == _FIELDS - 1:  # a cookie with an empty value may lose its last tab
        fields.append("")
    if len(fields) != _FIELDS:
        raise ValueError(f"expected {_FIELDS} tab-separated fields, got {len(fields)}")
    domain, subdomains, path, secure, expiry, name, value = fields
    if not domain.strip(". ") or not name:
        raise ValueError("empty domain or name")
    if any(ch in value for ch in ";\x00") or any(ch in name for ch in "=; \x00"):
        raise ValueError(f"cookie {name[:40]!r}: a name or value with '=', ';' or NUL")
    return Cookie(
        domain=domain.strip().lstrip(".").lower(),
        include_subdomains=_flag(subdomains, "include-subdomains"),
        path=path or "/",
        is_secure=_flag(secure, "secure"),
        expires_at=_expiry(expiry),
        name=name,
        value=value,
    )


def _flag(text: str, field_name: str) -> bool:
    try:
        return _FLAGS[text.strip().upper()]
    except KeyError:
        raise ValueError(f"{field_name} must be TRUE or FALSE, got {text[:20]!r}") from None


def _expiry(text: str) -> int:
    try:
        value = int(text.strip() or "0")
    except ValueError:
        raise ValueError(f"expiry must be epoch seconds, got {text[:20]!r}") from None
    return max(0, value)


def parse_cookies(lines: Iterable[str], source: str) -> list[Cookie]:
    """Every cookie of ``lines``; ``CookieFileError`` naming ``source`` and the first bad line."""
    cookies = []
    for number, line in enumerate(lines, start=1):
        try:
            cookie = parse_cookie_line(line)
        except ValueError as exc:
            raise CookieFileError(f"{source} line {number}: {exc}") from None
        if cookie is not None:
            cookies.append(cookie)
    return cookies


def load_cookie_file(path: Path) -> list[Cookie]:
    """The cookies of the file at ``path``; ``CookieFileError`` when unreadable or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CookieFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CookieFileError(f"cannot read {path}: not UTF-8 text") from None
    return parse_cookies(text.splitlines(), str(path))


def cookie_header(cookies: Iterable[Cookie], url: str, now: float) -> str | None:
    """The ``Cookie`` header value for a request to ``url`` at ``now``, None when no cookie
    matches. Longer paths first (RFC 6265 5.4); a later cookie of the same name, domain and
    path replaces an earlier one, as a browser's jar would."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    path = parts.path or "/"
    chosen: dict[tuple[str, str, str], Cookie] = {}
    for cookie in cookies:
        if cookie.matches(scheme, host, path, now):
            chosen[(cookie.domain, cookie.path, cookie.name)] = cookie
    if not chosen:
        return None
    ordered = sorted(chosen.values(), key=lambda c: len(c.path), reverse=True)
    return "; ".join(f"{c.name}={c.value}" for c in ordered)
