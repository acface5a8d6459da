"""The one redactor: secrets out of every line printed or logged, terminal escapes defused.

URL passwords, proxy credentials, the values of secret headers (Authorization, Cookie, API keys)
and store URLs are masked here; ``printable`` makes text that a server controls (redirect
targets, file names, error bodies) safe to write to a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Header names whose values are credentials; anything containing these words counts too.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey", "auth", "session", "cookie")
# C0 and C1 controls and DEL, except tab; ESC starts terminal escape sequences.
# Credentials carried in a query: passwords (``redis://h/0?password=x``, as redis-py accepts
# them), and the tokens and signatures of signed CDN and live-stream URLs (``?token=``,
# ``auth_key=``, ``sign=``, ``X-Amz-Signature=``, ``key=``): a parameter whose name holds one
# of these words, or is one of the short names.
_QUERY_PARAM = re.compile(r"([?&;])([^=&#;]*)=([^&#;]*)")
_SECRET_PARAM = re.compile(
    r"(?i)password|passwd|token|secret|credential|api_?key|access_?key|session|auth(?!or)"
    r"|(?:^|[_.-])sig(?:n|nature)?s?(?:$|[_.-])|^(?:key|pwd|pass|sid)$"
)
_C1 = re.compile(r"[\x7f-\x9f]")
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class HasSecrets(Protocol):
    """What the redactor reads from a job spec (``hauler.models.JobSpec`` is one)."""

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def is_secret_header(name: str) -> bool:
    """True when a header's value is a credential that must never be shown."""
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` with any password (userinfo or ``?password=``) and query credentials
    (``?token=``, ``?sign=``…) replaced by ``***`` (user names are kept)."""
    if "=" in url:
        url = _QUERY_PARAM.sub(_mask_param, url)
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


def _mask_param(match: re.Match[str]) -> str:
    lead, name, value = match.groups()
    if value and _SECRET_PARAM.search(name):
        return f"{lead}{name}={MASK}"
    return match.group(0)


def printable(text: str) -> str:
    """``text`` with control characters (ESC, CR, LF, NUL, C1) shown as ``\\xNN`` escapes, so
    that text from a server cannot move the cursor, recolour or rewrite the terminal."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def json_text(value: object) -> str:
    """``value`` as one JSON document, non-ASCII text kept, every control character escaped.

    ``json.dumps`` escapes C0 controls (ESC becomes ``\\u001b``) but, with
    ``ensure_ascii=False``, writes DEL and the C1 controls (U+0080..U+009F, CSI among them) raw.
    They can only occur inside JSON strings, so escaping them keeps the document valid.
    """
    text = json.dumps(value, ensure_ascii=False)
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the value of every secret header (``is_secret_header``) as ``***``."""
    return {k: MASK if is_secret_header(k) else v for k, v in headers.items()}


def url_password(url: str) -> str:
    """The password in ``url``'s userinfo, or ""."""
    if "@" not in url:
        return ""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def secret_header_values(headers: Mapping[str, str]) -> list[str]:
    """Values of secret headers, their bare tokens (``Bearer xyz`` → xyz) and cookie values."""
    values = [v for k, v in headers.items() if is_secret_header(k) and v]
    values += [v.split(None, 1)[1] for v in values if len(v.split(None, 1)) == 2]
    # Cookie: a=1; session=xyz → each value on its own, should one be echoed alone.
    for k, v in headers.items():
        if k.strip().lower() in ("cookie", "set-cookie"):
            values += [p.partition("=")[2].strip() for p in v.split(";") if "=" in p]
    return values


class Redactor:
    """Masks known secrets (passwords, secret header values) and URL passwords in text meant
    for a person or a script: it knows the secrets of the jobs it was built for."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is masked whole. Shorter ones
        # would mask ordinary words.
        self._secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    @classmethod
    def for_specs(cls, specs: Iterable[HasSecrets], proxy: str | None = None) -> Redactor:
        """A redactor for the secrets of these jobs (URL passwords, secret headers) and proxy."""
        secrets = [url_password(proxy)] if proxy else []
        for spec in specs:
            secrets.append(url_password(spec.url))
            secrets += secret_header_values(spec.headers)
        return cls(s for s in secrets if s)

    @classmethod
    def for_run(cls, specs: Sequence[HasSecrets], proxy: str | None) -> Redactor:
        """A redactor for the secrets of these jobs and this proxy (``get``'s run)."""
        return cls.for_specs(specs, proxy)

    def text(self, text: str) -> str:
        """``text`` with every known secret masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def url(self, url: str) -> str:
        """``url`` without its password (and any other known secret)."""
        return self.text(redact_url(url))
