"""What `hauler get` prints: records, lines, masking of secrets, the terminal view."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from hauler.cli.joblist import JobListError, parse_job_lines, unique_jobs
from hauler.cli.progressview import ProgressView
from hauler.cli.report import JsonReporter, PlainReporter, format_size
from hauler.errors import ContentMismatch
from hauler.local.outcome import ErrorInfo, FileOutcome
from hauler.models import JobSpec
from hauler.pipeline.file import outcome_of
from hauler.pipeline.outcome import Outcome
from hauler.redact import Redactor
from hauler.transfer.request import TransferResult

URL = "http://127.0.0.1:9/f.bin"


def result(size: int = 2048, checksum: str | None = None) -> Outcome:
    """A finished transfer of ``size`` bytes."""
    return outcome_of(
        TransferResult(URL, URL, Path("/out/f.bin"), size, size, 0, 0.5, checksum=checksum)
    )


def test_redactor_masks_url_passwords_proxy_and_secret_headers() -> None:
    specs = [
        JobSpec(url="http://bob:hunter2x@127.0.0.1/a"),
        JobSpec(url=URL, headers={"Authorization": "Bearer t0ken-value", "Accept": "x/y"}),
    ]
    redact = Redactor.for_run(specs, "socks5://u:proxypass@127.0.0.1:1080")
    text = "hunter2x t0ken-value proxypass Bearer t0ken-value x/y"
    masked = redact.text(text)
    assert "hunter2x" not in masked
    assert "t0ken-value" not in masked
    assert "proxypass" not in masked
    assert "x/y" in masked
    assert redact.url("http://bob:other-secret@h/a") == "http://bob:***@h/a"


def test_json_record_fields_and_counts() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = JsonReporter(Redactor([]), out, err)
    ok = FileOutcome(URL, 0.5, result=result(checksum="ab" * 32), checksum_algorithm="sha256")
    bad = FileOutcome(URL, 0.1, error=ErrorInfo.of(ContentMismatch("sha256 differs")))
    spec = JobSpec(url=URL)
    reporter.finished(spec, ok)
    reporter.finished(spec, bad)
    reporter.close([ok, bad], 1.0)
    summary = json.loads(out.getvalue())
    assert (summary["ok"], summary["failed"], summary["bytes"]) == (1, 1, 2048)
    first, second = summary["files"]
    assert first["sha256"] == "ab" * 32
    assert first["checksum"] == "sha256=" + "ab" * 32
    assert first["error"] is None
    assert second["error"] == {
        "class": "content_mismatch",
        "message": "sha256 differs",
    }
    assert err.getvalue().startswith(f"failed {URL}: content_mismatch")


def test_plain_lines() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = PlainReporter(Redactor([]), out, err)
    skipped = outcome_of(TransferResult(URL, URL, Path("/out/f.bin"), 10, 0, 0, 0.0, skipped=True))
    reporter.finished(JobSpec(url=URL), FileOutcome(URL, 0.0, result=skipped))
    reporter.close([FileOutcome(URL, 0.0, result=skipped)], 0.2)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("skipped /out/f.bin")
    assert lines[1].startswith("1 ok, 0 failed")


def test_format_size() -> None:
    assert format_size(0) == "0 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(5 * 1024**3) == "5.0 GiB"


def test_job_lines_name_the_bad_line() -> None:
    specs = parse_job_lines(["# c", "", URL, json.dumps({"url": URL, "output": "x"})], "list")
    assert [s.output for s in specs] == [None, "x"]
    with pytest.raises(JobListError, match="list line 2"):
        parse_job_lines([URL, '{"url": 3}'], "list")


def test_progress_view_renders_bars_and_summary() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    view = ProgressView(Redactor([]), console)
    spec = JobSpec(url=URL)
    sink = view.sink(spec)
    sink.started("f.bin", 2048, 1024)
    sink.advanced(1024)
    outcome = FileOutcome(URL, 0.5, result=result())
    view.finished(spec, outcome)
    view.close([outcome], 0.5)
    text = buffer.getvalue()
    assert "done /out/f.bin" in text
    assert "1 ok, 0 failed" in text


def test_repeated_urls_are_fetched_once() -> None:
    specs = [
        JobSpec(url=URL),
        JobSpec(url=URL.upper().replace("/F.BIN", "/f.bin")),
        JobSpec(url=URL, output="b"),
    ]
    assert [(s.url, s.output) for s in unique_jobs(specs)] == [(URL, None), (URL, "b")]
