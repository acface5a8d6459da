"""Whether a yt-dlp extractor of a site (not the generic one) claims a URL, without network.

The resolver of kind ``auto`` asks this: a URL that ``YoutubeIE``, ``BiliBiliIE``,
``DouyinIE``... calls ``suitable`` is a media job whatever its probe answers. The extractor
classes are built once (``gen_extractor_classes`` imports the lazy extractor table, ~1,800 of
them) and their URL patterns compile on first use, so the first call costs a few hundred
milliseconds and the next ones a fraction of that.
"""

from __future__ import annotations

import functools
from typing import Any

# Extractors that match any URL or a pseudo-URL rather than a site: never a reason for media.
_NOT_A_SITE = frozenset({"Generic", "CommonMistakes", "UnicodeBOM"})


def claims(url: str) -> bool:
    """True when an extractor other than the generic one is ``suitable()`` for ``url``."""
    return claiming_extractor(url) is not None


def claiming_extractor(url: str) -> str | None:
    """The key (``Youtube``, ``BiliBili``) of the first site extractor suitable for ``url``."""
    for extractor in _site_extractors():
        if extractor.suitable(url):
            return str(extractor.ie_key())
    return None


@functools.cache
def _site_extractors() -> tuple[Any, ...]:
    from yt_dlp.extractor import gen_extractor_classes

    return tuple(
        ie
        for ie in gen_extractor_classes()
        if ie.ie_key() not in _NOT_A_SITE and getattr(ie, "_VALID_URL", False)
    )


def video_key(url: str) -> str | None:
    """``Extractor:video-id`` for a URL a site extractor claims and whose id its URL pattern
    gives (``Youtube:dQw4w9WgXcQ`` for every spelling of one YouTube video), without network;
    None otherwise. Two URLs of one video are one job under this key."""
    for extractor in _site_extractors():
        if extractor.suitable(url):
            video_id = extractor.get_temp_id(url)
            return f"{extractor.ie_key()}:{video_id}" if video_id else None
    return None
