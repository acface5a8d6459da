"""Format requests: the shortcuts, heights, yt-dlp syntax passed through, nonsense refused with
one line (and every accepted string is one yt-dlp's own parser accepts)."""

from __future__ import annotations

import pytest
import yt_dlp

from hauler.errors import BadRequest
from hauler.media.formats import DEFAULT_FORMAT, format_spec


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "bv*+ba/b"),
        ("", "bv*+ba/b"),
        ("best", "bv*+ba/b"),
        ("BEST", "bv*+ba/b"),
        ("worst", "wv*+wa/w"),
        ("audio", "ba/b"),
        ("720", "bv*[height<=720]+ba/b[height<=720]"),
        ("1080p", "bv*[height<=1080]+ba/b[height<=1080]"),
        ("bv*+ba/b", "bv*+ba/b"),
        ("22/18", "22/18"),
        ("bv[height<=480][ext=mp4]+ba[ext=m4a]/b", "bv[height<=480][ext=mp4]+ba[ext=m4a]/b"),
        ("(bv*+ba/b)[filesize<50M]", "(bv*+ba/b)[filesize<50M]"),
        ('b[format_note*="DASH video"]', 'b[format_note*="DASH video"]'),
    ],
)
def test_shortcuts_heights_and_yt_dlp_syntax(given: str | None, expected: str) -> None:
    spec = format_spec(given)
    assert spec == expected
    yt_dlp.YoutubeDL({"quiet": True}).build_format_selector(spec)  # yt-dlp reads it too


def test_the_default_is_yt_dlps() -> None:
    assert DEFAULT_FORMAT == "bv*+ba/b"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("0", "between 1 and"),
        ("99999", "between 1 and"),
        ("bv*+", "operator"),
        ("/b", "operator"),
        ("bv*++ba", "two operators"),
        ("bv*[height<=720", "unclosed"),
        ("bv*]height", "unbalanced"),
        ("(bv*+ba", "unclosed"),
        ("best\x1b[31m", "unexpected characters"),
        ("b;rm -rf /", "unexpected characters"),
    ],
)
def test_nonsense_is_one_line(given: str, why: str) -> None:
    with pytest.raises(BadRequest) as caught:
        format_spec(given)
    message = str(caught.value)
    assert why in message
    assert "\n" not in message and "\x1b" not in message
