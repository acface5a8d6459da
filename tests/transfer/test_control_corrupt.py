"""A corrupt control file is discarded (start over), never an internal error or a bad Range."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hauler.transfer import marks
from hauler.transfer.engine import Engine
from hauler.transfer.partfile import ControlState
from tests.transfer.conftest import KIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Origin, RemoteFile, content

SIZE = 256 * KIB
CUT = 100 * KIB
NAME = "ctl.bin"
_RANGE = re.compile(r"bytes=\d+-\d*")


def _control(**changes: Any) -> dict[str, Any]:
    """A control file as the engine writes it for the origin's ``NAME``, with ``changes``."""
    remote = RemoteFile(NAME, SIZE)
    data: dict[str, Any] = {
        "version": 1,
        "url": "http://127.0.0.1/files/ctl.bin",
        "size": SIZE,
        "etag": remote.etag,
        "last_modified": remote.last_modified,
        "segments": [[0, SIZE, CUT]],
    }
    return data | changes


BAD = {
    "negative pos": _control(segments=[[0, SIZE, -500]]),
    "pos past end": _control(segments=[[0, SIZE, SIZE + 10]]),
    "bool pos": _control(segments=[[0, SIZE, True]]),
    "float pos": _control(segments=[[0, SIZE, 1024.5]]),
    "string pos": _control(segments=[[0, SIZE, "100"]]),
    "overlap": _control(segments=[[0, 200 * KIB, 10], [100 * KIB, SIZE, 100 * KIB]]),
    "outside size": _control(segments=[[0, SIZE * 2, CUT]]),
    "no segments": _control(segments=[]),
    "short triple": _control(segments=[[0, SIZE]]),
    "negative size": _control(size=-1),
    "string size": _control(size=str(SIZE)),
    "number etag": _control(etag=5),
    "url list": _control(url=["x"]),
    "extra key": _control(more=1),
    "not an object": [1, 2, 3],
}


@pytest.mark.parametrize("data", BAD.values(), ids=list(BAD))
def test_from_json_refuses(data: object) -> None:
    assert ControlState.from_json(json.dumps(data)) is None


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    assert ControlState.from_json("[" * 200_000 + "]" * 200_000) is None
    assert ControlState.from_json('{"segments":' + "[" * 100_000) is None


def test_a_good_control_file_round_trips() -> None:
    state = ControlState.from_json(json.dumps(_control(segments=[[CUT, SIZE, CUT], [0, CUT, 5]])))
    assert state is not None
    assert [(s.start, s.end, s.pos) for s in state.segments] == [(0, CUT, 5), (CUT, SIZE, CUT)]
    assert ControlState.from_json(state.to_json()) == state


async def _rerun(text: str, directory: Path) -> tuple[Origin, str]:
    """A correct partial with ``text`` as its control file, then a download; the origin."""
    origin = await Origin().start()
    try:
        origin.add(NAME, SIZE)
        part = directory / f"{NAME}.part"
        part.write_bytes(content(NAME, 1, 0, SIZE))
        # hauler's own partial: marked as this URL's (else it is someone else's, not resumed)
        os.setxattr(part, marks.ATTRIBUTE, marks.url_key(origin.url(NAME)).encode())
        (directory / f"{NAME}.part.json").write_text(text)
        async with Engine(fast_settings(connections=2)) as engine:
            result = await fetch(engine, origin.url(NAME), directory, filename=NAME)
        return origin, sha256_file(result.path)
    finally:
        await origin.close()


def _check_rerun(text: str) -> None:
    with tempfile.TemporaryDirectory() as name:
        origin, digest = asyncio.run(_rerun(text, Path(name)))
        assert digest == origin.sha256(NAME)
        for request in origin.requests_for(NAME):
            assert request.range is None or _RANGE.fullmatch(request.range), request.range
        assert sorted(p.name for p in Path(name).iterdir()) == [NAME]


@pytest.mark.parametrize("data", BAD.values(), ids=list(BAD))
def test_corrupt_control_file_starts_over(data: object, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hauler.transfer.partfile"):
        _check_rerun(json.dumps(data))
    assert "discarding the unusable control file" in caplog.text


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
_POSITION = st.one_of(
    st.integers(-(2**63), 2**63), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3)
)
_NEAR_VALID = st.builds(
    lambda a, b, c, size: json.dumps(_control(segments=[[a, b, c]], size=size)),
    _POSITION,
    _POSITION,
    _POSITION,
    st.one_of(st.just(SIZE), _POSITION, st.none()),
)
_GOOD = st.builds(lambda pos: json.dumps(_control(segments=[[0, SIZE, pos]])), st.integers(0, SIZE))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=40),
        _JSON.map(json.dumps),
        _NEAR_VALID,
        _GOOD,
        st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
    )
)
def test_any_control_file_ends_with_the_right_bytes(text: str) -> None:
    _check_rerun(text)
