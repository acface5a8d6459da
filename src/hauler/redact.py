"""The one redactor: secrets out of every line printed or logged, terminal escapes defused.

URL passwords, proxy credentials, the values of secret headers (Authorization, Cookie, API keys)
and store URLs are masked here; ``printable`` makes text that a server controls (redirect
targets, file names, error bodies) safe to write to a terminal.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Header names whose values are credentials; anything containing these words counts too.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey", "auth", "session", "cookie")
# C0 and C1 controls and DEL, except tab; ESC starts terminal escape sequences.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def is_secret_header(name: str) -> bool:
    """True when a header's value is a credential that must never be shown."""
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (user names are kept)."""
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{netloc}"))


def printable(text: str) -> str:
    """``text`` with control characters (ESC, CR, LF, NUL, C1) shown as ``\\xNN`` escapes, so
    that text from a server cannot move the cursor, recolour or rewrite the terminal."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
