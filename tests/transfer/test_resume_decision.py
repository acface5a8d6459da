"""The resume decisions on their own: the probe's range, whether a partial resumes against the
probe's reply (validators, size, ranges, the bytes on disk), wget -c, and the fresh plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hauler.transfer import marks
from hauler.transfer.body import RangeAsk, Reply
from hauler.transfer.partfile import ControlState, PartFile, Validators
from hauler.transfer.resume import (
    UNKNOWN_END,
    can_resume,
    continued,
    fresh,
    holds_claimed_bytes,
    probe_ask,
    start,
)
from hauler.transfer.segments import Segment, is_valid_cover

SIZE = 1000
URL = "http://127.0.0.1:9/x.bin"
PINNED = Validators(SIZE, '"v1"', "Tue, 14 Nov 2023 22:13:20 GMT")
BARE = Validators(SIZE, None, None)  # a server that sends no ETag and no Last-Modified


def reply(
    validators: Validators = PINNED,
    status: int = 206,
    first: int = 0,
    accepts_ranges: bool = True,
) -> Reply:
    length = None if validators.size is None else validators.size - first
    return Reply(status, URL, first, length, validators, accepts_ranges, None, None)


def control(validators: Validators = PINNED, *segments: Segment) -> ControlState:
    cover = list(segments) or [Segment(0, 500, 300), Segment(500, SIZE, 700)]
    return ControlState(URL, validators, cover, marks.url_key(URL))


@pytest.fixture
def part(tmp_path: Path) -> Iterator[PartFile]:
    """A real, locked partial holding 800 bytes: enough for ``control()``'s claims (700)."""
    opened = PartFile(tmp_path / "x.bin", marks.url_key(URL))
    opened.open()
    opened.write(0, b"\0" * 800)
    yield opened
    opened.close()


def test_the_probe_asks_from_the_first_missing_byte_pinned_by_if_range() -> None:
    assert probe_ask(control()) == RangeAsk(300, None, '"v1"')
    assert probe_ask(None) == RangeAsk()
    assert probe_ask(control(Validators(None, '"v1"', None))) == RangeAsk(), "no size: from 0"
    done = control(PINNED, Segment(0, SIZE, SIZE))
    assert probe_ask(done) == RangeAsk(SIZE - 1, None, '"v1"'), "complete: its last byte"
    assert probe_ask(control(), continue_from=123) == RangeAsk(123), "wget -c wins"


def test_the_same_pinned_version_resumes_and_any_difference_does_not() -> None:
    assert can_resume(control(), reply(), is_ranged=True)
    assert not can_resume(None, reply(), is_ranged=True)
    assert not can_resume(control(), reply(status=200), is_ranged=True), "ranges ignored"
    assert not can_resume(control(), reply(), is_ranged=False), "this attempt has no ranges"
    changed = Validators(SIZE, '"v2"', PINNED.last_modified)
    assert not can_resume(control(), reply(changed), is_ranged=True), "another ETag"
    assert not can_resume(control(), reply(Validators(SIZE + 1, '"v1"', None)), is_ranged=True)
    assert not can_resume(control(), reply(Validators(None, '"v1"', None)), is_ranged=True)
    gap = control(PINNED, Segment(0, 400, 100), Segment(500, SIZE, 500))
    assert not can_resume(gap, reply(), is_ranged=True), "ranges that leave a hole"


def test_without_validators_the_size_alone_decides() -> None:
    """aria2c's rule: the same size resumes (noted as unverified), another size does not."""
    assert can_resume(control(BARE), reply(BARE), is_ranged=True)
    assert not can_resume(control(BARE), reply(Validators(SIZE - 1, None, None)), is_ranged=True)
    assert not can_resume(control(BARE), reply(PINNED), is_ranged=True), "an ETag appeared"
    assert not BARE.is_pinned and PINNED.is_pinned


def test_a_partial_shorter_than_its_claims_is_not_resumed(part: PartFile) -> None:
    assert holds_claimed_bytes(control(), 700) and not holds_claimed_bytes(control(), 699)
    begun = start(control(), reply(), True, part, connections=4, min_split_bytes=100)
    assert begun.resumed == control() and begun.is_ranged
    assert begun.plan.done_bytes == 300 + 200 and begun.plan.size == SIZE
    part.truncate(699)
    begun = start(control(), reply(), True, part, connections=4, min_split_bytes=100)
    assert begun.resumed is None and begun.plan.done_bytes == 0


def test_a_fresh_plan_by_what_the_reply_allows() -> None:
    split = fresh(reply(), True, connections=4, min_split_bytes=100)
    assert split.is_ranged and len(split.plan.segments) == 4
    assert is_valid_cover(split.plan.segments, SIZE) and split.plan.done_bytes == 0
    whole = fresh(reply(status=200, accepts_ranges=False), True, connections=4, min_split_bytes=1)
    assert not whole.is_ranged and [(s.start, s.end) for s in whole.plan.segments] == [(0, SIZE)]
    assert not fresh(reply(), False, connections=4, min_split_bytes=1).is_ranged
    stream = fresh(
        reply(Validators(None, None, None), status=200), True, connections=4, min_split_bytes=1
    )
    assert not stream.is_ranged and stream.plan.size == UNKNOWN_END


def test_wget_c_continues_only_when_the_server_sends_the_rest() -> None:
    source = marks.url_key(URL)
    state = continued(400, reply(first=400), URL, source)
    assert state is not None and state.source == source
    assert [(s.start, s.end, s.pos) for s in state.segments] == [(0, SIZE, 400)]
    assert continued(400, reply(status=200), URL, source) is None, "the whole file again"
    assert continued(400, reply(first=0), URL, source) is None, "not from where it stopped"
    assert continued(400, reply(Validators(None, None, None), first=400), URL, source) is None
