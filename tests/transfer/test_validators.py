"""Validators: which version a reply is, and what may go in If-Range (RFC 9110 8.8, 13.1.5)."""

from __future__ import annotations

from hauler.transfer.fetch import is_strong_date
from hauler.transfer.partfile import Validators

LM = "Tue, 01 Dec 2026 10:00:00 GMT"


def test_weak_and_strong_forms_of_one_etag_are_one_version() -> None:
    # Apache: W/"x" while the file's mtime is under a second old, "x" after.
    weak, strong = Validators(10, 'W/"x"', LM), Validators(10, '"x"', LM)
    assert weak.same_version(strong) and strong.same_version(weak)
    assert not weak.same_version(Validators(10, 'W/"y"', LM))
    assert not weak.same_version(Validators(11, 'W/"x"', LM))


def test_if_range_takes_only_strong_validators() -> None:
    assert Validators(10, '"x"', LM).if_range == '"x"'
    assert Validators(10, 'W/"x"', LM).if_range == LM
    assert Validators(10, 'W/"x"', LM, has_strong_date=False).if_range is None
    assert Validators(10, None, LM, has_strong_date=False).if_range is None
    assert Validators(10, None, None).if_range is None


def test_a_date_is_strong_a_second_before_the_answer() -> None:
    assert is_strong_date(LM, "Tue, 01 Dec 2026 10:00:01 GMT")
    assert not is_strong_date(LM, "Tue, 01 Dec 2026 10:00:00 GMT")
    assert not is_strong_date(LM, "Tue, 01 Dec 2026 09:59:00 GMT")  # mtime ahead of the clock
    assert is_strong_date(LM, None)  # cannot be told: as before
    assert is_strong_date("garbage", "Tue, 01 Dec 2026 10:00:01 GMT")
