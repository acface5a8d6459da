"""The one redactor: URL passwords, secret headers, known secrets in text, terminal escapes."""

from __future__ import annotations

import json

import pytest

from hauler.models import JobSpec
from hauler.redact import (
    Redactor,
    is_secret_header,
    json_text,
    masked_headers,
    printable,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("socks5://bob:hunter2@proxy:1080", "socks5://bob:***@proxy:1080"),
        ("http://example.com/a", "http://example.com/a"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("foo://user:pw@h/", "foo://user:***@h/"),
        ("redis://h/0?password=s3cret&db=1", "redis://h/0?password=***&db=1"),
        ("http://user@h/a", "http://user@h/a"),
        # Signed stream and CDN URLs: their tokens and signatures, not their other parameters.
        (
            "https://cdn.example/live.flv?token=abc123&expires=5&sign=zz&x=1",
            "https://cdn.example/live.flv?token=***&expires=5&sign=***&x=1",
        ),
        (
            "https://s3.example/o?X-Amz-Signature=ab&X-Amz-Credential=c&X-Amz-Date=1",
            "https://s3.example/o?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Date=1",
        ),
        (
            "https://h/p?design=1&key=AIza&auth_key=1-0-ab&author=bob&wsSecret=q&sid=9",
            "https://h/p?design=1&key=***&auth_key=***&author=bob&wsSecret=***&sid=***",
        ),
        ("https://h/watch?v=abc&list=x", "https://h/watch?v=abc&list=x"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("cookie", True),
        ("X-Api-Key", True),
        ("X-Session-Id", True),
        ("Private-Token", True),
        ("Accept", False),
        ("Referer", False),
    ],
)
def test_secret_headers(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret
    assert (masked_headers({name: "v"})[name] == "***") is secret


def test_redactor_masks_a_jobs_secrets_in_any_text() -> None:
    spec = JobSpec(
        url="http://bob:url-pw@h/a",
        headers={"Authorization": "Bearer tok-1", "Cookie": "sid=sess-2; theme=dark"},
    )
    redact = Redactor.for_specs([spec], proxy="http://p:proxy-pw@h:1")
    text = redact.text("url-pw tok-1 sess-2 proxy-pw dark Bearer")
    assert text == "*** *** *** *** *** Bearer"  # every cookie's value counts as a secret
    assert redact.url("http://bob:other@h/") == "http://bob:***@h/"


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b]0;pwned\x07\x1b[2Jb\r\n\x00\x9b") == (
        "a\\x1b]0;pwned\\x07\\x1b[2Jb\\x0d\\x0a\\x00\\x9b"
    )
    assert printable("été\tok") == "été\tok"


def test_json_text_escapes_every_control_and_stays_json() -> None:
    value = {"name": "é\x1b[2J\x9b\x7f"}
    text = json_text(value)
    assert not any(ch in text for ch in "\x1b\x9b\x7f") and "é" in text
    assert json.loads(text) == value
