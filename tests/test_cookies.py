"""Netscape cookie files: parsing, and which cookies go with which URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from hauler.cookies import CookieFileError, cookie_header, load_cookie_file, parse_cookies

NOW = 1_800_000_000
FUTURE = str(NOW + 3600)
PAST = str(NOW - 1)

JAR = "\n".join(
    [
        "# Netscape HTTP Cookie File",
        "",
        "\t".join([".example.com", "TRUE", "/", "FALSE", FUTURE, "site", "s1"]),
        "\t".join(["example.com", "FALSE", "/files", "FALSE", "0", "files", "f1"]),
        "\t".join(["example.com", "FALSE", "/", "TRUE", FUTURE, "secure", "x1"]),
        "\t".join(["example.com", "FALSE", "/", "FALSE", PAST, "stale", "old"]),
        "#HttpOnly_" + "\t".join(["example.com", "FALSE", "/", "FALSE", "0", "sess", "h1"]),
        "\t".join(["other.org", "FALSE", "/", "FALSE", "0", "other", "o1"]),
    ]
)


def header(url: str) -> str | None:
    return cookie_header(parse_cookies(JAR.splitlines(), "jar"), url, NOW)


def test_cookies_match_host_path_scheme_and_expiry() -> None:
    assert header("http://example.com/files/a.bin") == "files=f1; site=s1; sess=h1"
    assert header("https://example.com/") == "site=s1; secure=x1; sess=h1"
    assert header("http://example.com/filesystem") == "site=s1; sess=h1"  # not below /files
    assert header("http://cdn.example.com/files/a.bin") == "site=s1"  # only the TRUE one
    assert header("http://notexample.com/") is None
    assert header("http://other.org/x") == "other=o1"


def test_a_later_cookie_of_the_same_name_replaces_the_earlier() -> None:
    lines = [
        "\t".join(["h.test", "FALSE", "/", "FALSE", "0", "k", "first"]),
        "\t".join(["h.test", "FALSE", "/", "FALSE", "0", "k", "second"]),
        "\t".join(["h.test", "FALSE", "/", "FALSE", "0", "empty"]),  # value and its tab gone
    ]
    assert cookie_header(parse_cookies(lines, "j"), "http://h.test/", NOW) == "k=second; empty="


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("example.com\tTRUE\t/", "7 tab-separated fields, got 3"),
        ("example.com\tYES\t/\tFALSE\t0\tn\tv", "include-subdomains must be TRUE or FALSE"),
        ("example.com\tTRUE\t/\tFALSE\tsoon\tn\tv", "expiry must be epoch seconds"),
        ("example.com\tTRUE\t/\tFALSE\t0\tn\tv;evil=1", "';'"),
        ("\tTRUE\t/\tFALSE\t0\tn\tv", "empty domain"),
    ],
)
def test_a_malformed_line_is_named_with_its_number(line: str, reason: str) -> None:
    with pytest.raises(CookieFileError, match=r"^jar line 3: ") as caught:
        parse_cookies(["# c", "", line], "jar")
    assert reason in str(caught.value)


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CookieFileError, match=r"cannot read .*missing\.txt: No such file"):
        load_cookie_file(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CookieFileError, match="not UTF-8"):
        load_cookie_file(binary)
