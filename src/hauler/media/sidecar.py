"""The ``<name>.info.json`` sidecar: the info dict as yt-dlp's ``--write-info-json`` writes it,
without secrets.

yt-dlp's cleaning comes first (``YoutubeDL.sanitize_info(info, remove_private_keys=True)``:
private ``__`` keys, the requested downloads and file paths out, everything JSON-safe), then
ours, at every depth of the dict (formats, entries, subtitles, thumbnails):

- ``cookies`` fields (yt-dlp keeps a format's cookies there) are dropped;
- secret headers (Authorization, Cookie, API keys: ``hauler.redact.is_secret_header``) are
  dropped from every ``http_headers``;
- a password in any URL is masked (``hauler.redact.redact_url``), and any value known to be a
  secret (a ``Redactor``'s) is masked wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hauler.redact import Redactor, is_secret_header, redact_url

_DROPPED_KEYS = frozenset({"cookies", "_cookies"})
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>\"']+", re.IGNORECASE)


def sidecar_info(info: Mapping[str, Any], redactor: Redactor | None = None) -> dict[str, Any]:
    """The sidecar's content for ``info`` (a raw or sanitised info dict; it is not changed)."""
    from yt_dlp import YoutubeDL

    # sanitize_info sets defaults (epoch, _type, _version) on the dict it is given: a copy.
    cleaned = YoutubeDL.sanitize_info(dict(info), remove_private_keys=True)
    stripped = _strip(cleaned, redactor or Redactor(()))
    assert isinstance(stripped, dict)
    return stripped


def _strip(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {
            key: _headers(item, redactor) if key == "http_headers" else _strip(item, redactor)
            for key, item in value.items()
            if key not in _DROPPED_KEYS
        }
    if isinstance(value, list):
        return [_strip(item, redactor) for item in value]
    if isinstance(value, str):
        if "://" in value:  # a URL, or text with URLs in it (a description)
            value = _URL.sub(lambda m: redact_url(m.group()), value)
        return redactor.text(value)
    return value


def _headers(headers: Any, redactor: Redactor) -> Any:
    if not isinstance(headers, dict):
        return _strip(headers, redactor)
    return {
        name: _strip(item, redactor)
        for name, item in headers.items()
        if not is_secret_header(str(name))
    }
