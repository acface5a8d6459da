"""claims(): a site extractor (not the generic one) claims the URL, with no request made."""

from __future__ import annotations

import time

import pytest

from hauler.media.claims import claiming_extractor, claims
from tests.media.site import MediaSite


@pytest.mark.parametrize(
    ("url", "extractor"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Youtube"),
        ("https://youtu.be/dQw4w9WgXcQ", "Youtube"),
        ("https://www.bilibili.com/video/BV1xx411c7mD", "BiliBili"),
        ("https://www.douyin.com/video/6961737553342991651", "Douyin"),
        ("https://vimeo.com/76979871", "Vimeo"),
        ("https://example.com/file.zip", None),
        ("https://example.com/live/index.m3u8", None),
        ("https://example.com/watch.html", None),
        ("url", None),  # CommonMistakes matches this: not a site
    ],
)
def test_site_extractors_claim_their_urls(url: str, extractor: str | None) -> None:
    assert claiming_extractor(url) == extractor
    assert claims(url) is (extractor is not None)


async def test_no_request_and_fast_once_warm(site: MediaSite) -> None:
    urls = [site.url("/video.html"), site.media_url("direct.mp4"), site.url("/feed.xml")]
    assert not any(claims(url) for url in urls)
    began = time.perf_counter()
    for _ in range(20):
        claims(site.url("/video.html"))
    assert (time.perf_counter() - began) / 20 < 0.05  # the classes and patterns are cached
    assert site.requests == []
