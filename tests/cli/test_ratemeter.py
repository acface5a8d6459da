"""The progress bars' speed: downloaded bytes over seconds, never a batch's or a resume's burst."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from hauler.cli.progressview import ProgressView
from hauler.cli.ratemeter import RateMeter
from hauler.cli.report import Redactor
from hauler.models import JobSpec

MIB = 1024 * 1024


def test_a_burst_right_after_the_start_is_spread_over_a_second_at_least() -> None:
    meter = RateMeter(started_at=100.0)
    meter.add(100.01, 100 * MIB)
    assert meter.rate(100.02) == pytest.approx(100 * MIB)  # per second, not per 10 ms


def test_batched_bytes_read_as_the_steady_rate() -> None:
    meter = RateMeter(started_at=0.0)
    at = 0.0
    while at < 10.0:  # 4 MiB/s arriving in batches every 50 ms, as from -P children
        at += 0.05
        meter.add(at, 4 * MIB // 20)
    assert meter.rate(at) == pytest.approx(4 * MIB, rel=0.03)


def test_a_stall_brings_the_rate_down_to_zero() -> None:
    meter = RateMeter(started_at=0.0, window_s=3.0)
    for tick in range(1, 41):
        meter.add(tick * 0.1, 100_000)
    assert meter.rate(4.0) > 0
    assert meter.rate(7.5) == 0.0


def test_bytes_already_on_disk_do_not_show_as_speed() -> None:
    buffer = io.StringIO()
    view = ProgressView(Redactor([]), Console(file=buffer, force_terminal=True, width=120))
    spec = JobSpec(url="http://a.example/big.bin")
    sink = view.sink(spec)
    sink.started("big.bin", 10 * 1024 * MIB, 9 * 1024 * MIB)  # 9 GiB resumed
    sink.advanced(MIB)
    view.close([], 0.1)
    text = buffer.getvalue()
    speeds = _speeds(text)
    assert "big.bin" in text and speeds
    assert max(speeds) <= 2 * MIB, text  # 1 MiB downloaded, over at least a second


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": MIB, "gi": 1024**3}


def _speeds(text: str) -> list[float]:
    """Every "<number> <unit>/s" in ``text``, in bytes per second (binary or decimal units)."""
    found = re.findall(r"([\d.]+) ?([KMG]?i?)B/s", text)
    return [float(number) * _UNITS[unit.lower()] for number, unit in found]
