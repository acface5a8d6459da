"""The .info.json sidecar: yt-dlp's cleaning plus ours (cookies, secret headers, URL passwords)
at every depth, on a real extraction and on an info dict with secrets everywhere."""

from __future__ import annotations

import json
from pathlib import Path

from hauler.media.extract import ExtractOptions, extract
from hauler.media.sidecar import sidecar_info
from hauler.redact import Redactor
from tests.media.site import MediaSite


async def test_a_real_extraction_loses_its_secrets(site: MediaSite, tmp_path: Path) -> None:
    cookie_file = tmp_path / "cookies.txt"
    cookie_file.write_text("127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tcookie-s3cret\n")
    headers = {"Authorization": "Bearer tok-s3cret", "X-Plain": "kept"}
    info = await extract(
        site.url("/video.html"), ExtractOptions(cookie_file=cookie_file, headers=headers)
    )
    raw = json.dumps(info)
    assert "cookie-s3cret" in raw and "tok-s3cret" in raw  # yt-dlp keeps both in its formats
    sidecar = sidecar_info(info)
    text = json.dumps(sidecar)
    assert "s3cret" not in text and '"cookies"' not in text
    assert sidecar["id"] == info["id"] and sidecar["title"] == info["title"]
    assert sidecar["formats"][0]["url"] == site.media_url("direct.mp4")
    assert sidecar["formats"][0]["http_headers"]["X-Plain"] == "kept"
    assert "User-Agent" in sidecar["http_headers"]
    assert "requested_subtitles" not in sidecar  # yt-dlp's own cleaning ran too
    assert "cookies" in info  # the given dict is not changed


def test_secrets_are_stripped_at_every_depth() -> None:
    info = {
        "id": "v1",
        "title": "A title",
        "__x_forwarded_for_ip": "10.0.0.1",
        "webpage_url": "https://user:pa55word@example.com/watch?v=1",
        "description": "mirror at ftp://bob:hunter2@files.example.com/v1 and more",
        "http_headers": {"Cookie": "sid=c00kie", "User-Agent": "ua", "X-Api-Key": "k3y"},
        "formats": [
            {
                "format_id": "hd",
                "url": "https://cdn.example.com/v.mp4?sig=abc",
                "cookies": "sid=c00kie; Domain=.example.com",
                "http_headers": {"authorization": "Basic Zm9vOmJhcg==", "Referer": "r"},
            }
        ],
        "entries": [{"id": "e1", "http_headers": {"Proxy-Authorization": "Basic eA=="}}],
        "filepath": "/tmp/out.mp4",
    }
    sidecar = sidecar_info(info, Redactor(["tok-known-secret"]))
    text = json.dumps(sidecar)
    for secret in ("pa55word", "hunter2", "c00kie", "k3y", "Zm9vOmJhcg", "eA==", "10.0.0.1"):
        assert secret not in text, secret
    assert sidecar["webpage_url"] == "https://user:***@example.com/watch?v=1"
    assert sidecar["description"] == "mirror at ftp://bob:***@files.example.com/v1 and more"
    assert sidecar["http_headers"] == {"User-Agent": "ua"}
    assert sidecar["formats"][0] == {
        "format_id": "hd",
        "url": "https://cdn.example.com/v.mp4?sig=***",  # a signed URL's signature too
        "http_headers": {"Referer": "r"},
    }
    assert "filepath" not in sidecar and "__x_forwarded_for_ip" not in sidecar
    known = sidecar_info(
        {"id": "v", "title": "leaked tok-known-secret"}, Redactor(["tok-known-secret"])
    )
    assert known["title"] == "leaked ***"
