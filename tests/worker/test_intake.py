"""Reading URL and JSON-lines input: batches, defaults, bad lines with their numbers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hauler.intake import parse_line, read_batches, validate_url
from hauler.models import JobKind, JobSpec

DEFAULTS = {"priority": 2, "collection": "c1", "max_attempts": 3, "kind": JobKind.FILE}


def test_plain_urls_take_the_defaults() -> None:
    spec = parse_line("  http://127.0.0.1:9/a.bin \n", DEFAULTS)
    assert spec is not None
    assert (spec.url, spec.priority, spec.collection, spec.max_attempts, spec.kind) == (
        "http://127.0.0.1:9/a.bin",
        2,
        "c1",
        3,
        JobKind.FILE,
    )


def test_json_lines_carry_their_own_options() -> None:
    line = '{"url": "http://127.0.0.1:9/b", "priority": 7, "output": "x/b.bin", "tags": ["t"]}'
    spec = parse_line(line, DEFAULTS)
    assert spec is not None
    assert (spec.priority, spec.output, spec.tags, spec.collection) == (
        7,
        "x/b.bin",
        ("t",),
        "default",
    )


def test_blank_lines_and_comments_are_not_jobs() -> None:
    assert parse_line("   \n", DEFAULTS) is None
    assert parse_line("# a comment", DEFAULTS) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not a url", "not a URL"),
        ("127.0.0.1/x", "not a URL"),
        ('{"url": "http://127.0.0.1/x"', "bad JSON"),
        ('{"priority": 1}', '"url"'),
        ('{"url": "http://127.0.0.1/x", "bogus": 1}', "bogus"),
        ('{"url": "http://127.0.0.1/x", "checksum": "sha256=zz"}', "checksum"),
        ('{"url": "no-scheme"}', "not a URL"),
    ],
)
def test_bad_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_line(line, DEFAULTS)


def test_batches_keep_line_numbers_of_bad_lines() -> None:
    lines = ["http://127.0.0.1/1", "oops", "", "http://127.0.0.1/2", "{bad", "http://127.0.0.1/3"]
    batches = list(read_batches(lines, {}, batch_lines=4))
    assert [len(b.specs) for b in batches] == [2, 1]
    assert [(bad.line_no, bad.text) for b in batches for bad in b.bad] == [(2, "oops"), (5, "{bad")]


def test_batches_are_read_lazily() -> None:
    """An endless input yields its first batch: nothing reads the whole input first."""

    def endless() -> Iterator[str]:
        for n in itertools.count():
            yield f"http://127.0.0.1/{n}"

    first = next(read_batches(endless(), {}, batch_lines=1000))
    assert len(first.specs) == 1000
    assert first.specs[-1].url == "http://127.0.0.1/999"


@given(st.lists(st.text(max_size=40), max_size=60), st.integers(min_value=1, max_value=7))
def test_every_line_is_a_job_a_bad_line_or_blank(lines: list[str], batch_lines: int) -> None:
    """Nothing is dropped silently: each line is accounted for, bad ones with their number."""
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    batches = list(read_batches(lines, {}, batch_lines=batch_lines))
    bad_numbers = [bad.line_no for batch in batches for bad in batch.bad]
    specs = sum(len(batch.specs) for batch in batches)
    blank = sum(1 for line in lines if not line.strip() or line.strip().startswith("#"))
    assert specs + len(bad_numbers) + blank == len(lines)
    assert bad_numbers == sorted(set(bad_numbers))
    assert all(1 <= n <= len(lines) for n in bad_numbers)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://h:99999/", "port"),
        ("http://h:8x/", "port"),
        ("http://[::1/x", "unbalanced"),
        ("http://h]/x", "unbalanced"),
        ("http://h/a b", "column 11"),
        ("http://h/\x1b[2J", "control character"),
        ("http://h/caf\udce9", "not valid UTF-8"),
        ("http://:80/x", "no host"),
        ("//h/x", "not a URL"),
    ],
)
def test_one_url_validator_for_every_intake(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_url(url)
    with pytest.raises(ValueError, match=reason):
        JobSpec(url=url)
    with pytest.raises(ValueError, match=reason):
        parse_line(url, {})


@pytest.mark.parametrize(
    "url",
    ["http://[::1]:8080/x", "https://u:p%40ss@h.example/a?b=c#d", "http://é.example/ü", "s3://b/k"],
)
def test_valid_urls_pass_unchanged(url: str) -> None:
    assert validate_url(f"  {url}\n") == url


def test_dedupe_key_includes_the_output_only_when_given() -> None:
    plain = JobSpec(url="HTTP://H:80/a")
    assert plain.dedupe_key == "http://h/a"  # the key of earlier versions: archives still match
    one, two = (JobSpec(url="http://h/a", output=name) for name in ("1.bin", "2.bin"))
    assert len({plain.dedupe_key, one.dedupe_key, two.dedupe_key}) == 3
    assert JobSpec(url="http://h/a", output="1.bin", key="k").dedupe_key == "k"
