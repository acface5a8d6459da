"""Safe names: hostile inputs never leave the output directory, and stay portable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hauler.errors import BadRequest
from hauler.naming import (
    LONGEST_DERIVED_SUFFIX,
    MAX_COMPONENT_BYTES,
    MAX_COUNTER,
    MAX_FILE_NAME_BYTES,
    name_from_response,
    numbered,
    safe_name,
    safe_path,
)

# Whole hostile pieces joined with arbitrary text, so that "..", "CON" and separators are common.
HOSTILE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["/", "\\", ".", "..", " ", "\x00", ":", "CON", "é", "€", "😀", "x" * 100]),
        st.text(max_size=20),
    ),
    max_size=40,
).map("".join)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "etc/passwd"),
        ("/etc/passwd", "etc/passwd"),
        ("..\\..\\windows\\system32", "windows/system32"),
        ("a/./b//c", "a/b/c"),
        ("..", "download"),
        ("", "download"),
        ("\x00\x01\x1f", "download"),
        ("na\x00me\n.txt", "name.txt"),
        ('a<b>c:d"e|f?g*h', "a_b_c_d_e_f_g_h"),
        ("trailing. . ", "trailing"),
        ("dir. /file.txt", "dir/file.txt"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("Lpt9.tar.gz", "_Lpt9.tar.gz"),
        ("AUX .log", "_AUX .log"),
        ("COM10", "COM10"),
        ("com².log", "_com².log"),
        ("CONOUT$", "_CONOUT$"),
        ("console.txt", "console.txt"),
        ("C:\\Users\\x", "C_/Users/x"),
    ],
)
def test_safe_name_table(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_long_component_keeps_extension_and_byte_cap() -> None:
    name = safe_name("é" * 300 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode("utf-8")) <= 255
    assert set(name.removesuffix(".mp4")) == {"é"}


def test_long_component_with_huge_extension_is_cut_from_the_end() -> None:
    name = safe_name("a." + "b" * 400)
    assert name.startswith("a.b")
    assert len(name.encode("utf-8")) == MAX_FILE_NAME_BYTES


def test_longest_derived_name_fits() -> None:
    # The control file's background temp file of a numbered name: the longest name hauler makes.
    for raw in ("é" * 300 + ".mp4", "x" * 300, "d/" + "字" * 120 + ".tar.gz", "a." + "b" * 400):
        name = safe_name(raw)
        longest = numbered(name, MAX_COUNTER).rpartition("/")[2] + LONGEST_DERIVED_SUFFIX
        assert len(longest.encode("utf-8")) <= MAX_COMPONENT_BYTES
        assert name.endswith(raw.rpartition(".")[2][:32])


def test_derived_suffixes_are_no_longer_than_the_room_kept() -> None:
    from hauler.transfer.controlfiles import CONTROL_SUFFIX
    from hauler.transfer.partfile import CONTROL_TMP_SUFFIXES

    for suffix in CONTROL_TMP_SUFFIXES:
        assert len(CONTROL_SUFFIX + suffix) <= len(LONGEST_DERIVED_SUFFIX)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.bin", "x.1.bin"),
        ("x", "x.1"),
        (".hidden", ".hidden.1"),
        ("a.tar.gz", "a.tar.1.gz"),
        ("sub/x.bin", "sub/x.1.bin"),
        ("v1.0/readme", "v1.0/readme.1"),
    ],
)
def test_numbered(name: str, expected: str) -> None:
    assert numbered(name, 1) == expected


def test_lone_surrogates_do_not_break_encoding() -> None:
    assert safe_name("bad\udcffname.txt") == "bad_name.txt"


def test_safe_path_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(outside)
    with pytest.raises(BadRequest):
        safe_path(out, "link/file.bin")
    os.symlink("/", out / "root")
    with pytest.raises(BadRequest):
        safe_path(out, "root")


def test_safe_path_allows_symlink_inside(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert safe_path(tmp_path, "alias/f") == (tmp_path / "real" / "f").resolve()


@pytest.mark.parametrize(
    ("url", "disposition", "expected"),
    [
        ("http://h/a/b%20c.zip?x=1#f", None, "b c.zip"),
        ("http://h/dir/", None, "dir"),
        ("http://h/", None, "index.html"),
        ("http://h", None, "index.html"),
        ("http://h/a%2F..%2F..%2Fetc%2Fpasswd", None, "passwd"),
        ("http://h/x", 'attachment; filename="report.pdf"', "report.pdf"),
        ("http://h/x", "attachment; filename=plain.bin", "plain.bin"),
        (
            "http://h/x",
            "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
            "€ rates.txt",
        ),
        ("http://h/x", "attachment; filename*=iso-8859-1'en'%A3%20rates", "£ rates"),
        ("http://h/x", 'attachment; filename="../../../etc/passwd"', "passwd"),
        ("http://h/x", 'attachment; filename="/abs/evil.sh"', "evil.sh"),
        ("http://h/x", 'attachment; filename="C:\\\\temp\\\\evil.exe"', "evil.exe"),
        ("http://h/x", "attachment; filename*=UTF-8''..%2F..%2Fevil", "evil"),
        ("http://h/x", 'attachment; filename=".."', "x"),
        ("http://h/x", 'attachment; filename="CON.txt"', "_CON.txt"),
        ("http://h/x", 'attachment; filename="a\\"b.txt"', "a_b.txt"),
        ("http://h/x", "attachment", "x"),
        ("http://h/x", "attachment; filename*=bogus", "x"),
        ("http://h/x", "attachment; filename*=koi8-r''%C1", "x"),
    ],
)
def test_name_from_response(url: str, disposition: str | None, expected: str) -> None:
    assert name_from_response(url, disposition) == expected


@settings(max_examples=300, deadline=None)
@given(HOSTILE_TEXT)
def test_safe_name_properties(text: str) -> None:
    name = safe_name(text)
    assert name
    assert "\x00" not in name
    assert not name.startswith("/")
    assert "\\" not in name
    for part in name.split("/"):
        assert part not in ("", ".", "..")
        assert len(part.encode("utf-8")) <= 255
        assert not part.endswith((".", " "))
    last = numbered(name, MAX_COUNTER).rpartition("/")[2]
    assert len((last + LONGEST_DERIVED_SUFFIX).encode("utf-8")) <= MAX_COMPONENT_BYTES


@settings(max_examples=200, deadline=None)
@given(HOSTILE_TEXT)
def test_safe_path_stays_inside(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    base = tmp_path_factory.getbasetemp().resolve()
    path = safe_path(base, text)
    assert path != base
    assert path.is_relative_to(base)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.one_of(st.none(), HOSTILE_TEXT))
def test_name_from_response_is_one_safe_component(path: str, disposition: str | None) -> None:
    from urllib.parse import quote

    name = name_from_response("http://h/" + quote(path, safe="/"), disposition)
    assert name
    assert "/" not in name
    assert name == safe_name(name)
