"""The exit status table: one code per cause, 1 when causes differ, every class mapped."""

from __future__ import annotations

import pytest

from hauler.errors import ErrorClass
from hauler.exitcodes import BY_CLASS, ExitCode, code_for_class, exit_status


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ([], ExitCode.OK),
        (["not_found", "gone", "not_found"], ExitCode.NOT_FOUND),
        (["forbidden"], ExitCode.FORBIDDEN),
        (["connection", "stalled", "throttled"], ExitCode.NETWORK),
        (["local"], ExitCode.LOCAL),
        (["content_mismatch"], ExitCode.CONTENT),
        (["bad_request"], ExitCode.BAD_REQUEST),
        (["not_found", "forbidden"], ExitCode.FAILED),
        (["internal"], ExitCode.FAILED),
        (["not_found", "internal"], ExitCode.FAILED),
    ],
)
def test_status_is_the_shared_cause_or_1(classes: list[str], expected: ExitCode) -> None:
    assert exit_status(classes) == expected


def test_codes_are_distinct_from_usage_store_and_signals() -> None:
    specific = set(BY_CLASS.values()) - {ExitCode.STORE_UNAVAILABLE}
    assert specific.isdisjoint({ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE})
    assert all(2 < code < 128 for code in specific)
    # Every class has a code: the ones without one of their own are "1, failed".
    assert {code_for_class(c) for c in ErrorClass} <= set(ExitCode)
    assert code_for_class("NotFound") == ExitCode.FAILED  # class names are not classes
