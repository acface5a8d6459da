"""Progress for batches: the overall bar counts every file, each file shows its connections, and
the bars reach a terminal on stderr even when stdout carries the lines or the JSON."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
import threading
from pathlib import Path

from rich.console import Console

from hauler.cli.progressview import ProgressView
from hauler.cli.report import PlainReporter
from hauler.local.outcome import FileOutcome
from hauler.models import JobSpec
from hauler.pipeline.file import outcome_of
from hauler.redact import Redactor
from hauler.transfer.request import TransferResult
from tests.cli.process import RUN_TIMEOUT_S, HaulerRunner
from tests.transfer.origin import Origin

MIB = 1024 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def rendered(buffer: io.StringIO) -> str:
    """What the terminal shows, without colour and cursor codes."""
    return _ANSI.sub("", buffer.getvalue())


def terminal() -> tuple[io.StringIO, Console]:
    buffer = io.StringIO()
    return buffer, Console(file=buffer, force_terminal=True, width=160)


def last_line(buffer: io.StringIO, needle: str) -> str:
    """The last rendered line holding ``needle`` (the display's final state)."""
    return [line for line in rendered(buffer).splitlines() if needle in line][-1]


def outcome(url: str, size: int = 10) -> FileOutcome:
    result = outcome_of(TransferResult(url, url, Path("/out/f.bin"), size, size, 0, 0.1))
    return FileOutcome(url, 0.1, result=result)


def test_the_overall_bar_counts_every_file_of_the_batch() -> None:
    buffer, console = terminal()
    view = ProgressView(Redactor([]), console, files=300)
    specs = [JobSpec(url=f"http://a.test/f{i}.bin") for i in range(5)]
    sinks = [view.sink(spec) for spec in specs]
    sinks[3].started("f3.bin", 1 * MIB, 0)
    sinks[4].started("f4.bin", 2 * MIB, 0)
    for spec, sink in zip(specs[:3], sinks[:3], strict=True):
        sink.started(spec.url.rsplit("/", 1)[-1], 10, 0)
        sink.advanced(10)
        view.finished(spec, outcome(spec.url))
    view.close([], 1.0)
    overall = last_line(buffer, "files")
    assert "3/300 files" in overall
    assert " 1%" in overall  # 3 of 300 files, not 3 of the 5 started
    assert "/3.0 MiB" in overall  # the sizes known so far: 1 MiB + 2 MiB + 3 x 10 B


def test_the_percentage_counts_running_files_by_their_bytes() -> None:
    buffer, console = terminal()
    view = ProgressView(Redactor([]), console, files=4)
    spec = JobSpec(url="http://a.test/big.bin")
    sink = view.sink(spec)
    sink.started("big.bin", 4 * MIB, 1 * MIB)  # a quarter already on disk
    sink.advanced(1 * MIB)
    view.close([], 1.0)
    overall = last_line(buffer, "0/4 files")
    assert " 12%" in overall  # half of one file of four


def test_each_file_shows_its_connections() -> None:
    buffer, console = terminal()
    view = ProgressView(Redactor([]), console, files=2)
    one, two = (view.sink(JobSpec(url=f"http://a.test/{n}.bin")) for n in ("one", "two"))
    one.started("one.bin", 8 * MIB, 0)
    two.started("two.bin", 8 * MIB, 0)
    for count in (1, 2, 3, 4):
        one.connections(count)  # type: ignore[attr-defined]
    two.connections(1)  # type: ignore[attr-defined]
    view.close([], 1.0)
    assert re.search(r"one\.bin\s+x4 ", last_line(buffer, "one.bin"))
    assert re.search(r"two\.bin\s+x1 ", last_line(buffer, "two.bin"))


def test_names_and_retry_messages_from_a_server_are_escaped_and_masked() -> None:
    buffer, console = terminal()
    view = ProgressView(Redactor(["s3cret"]), console, files=1)
    sink = view.sink(JobSpec(url="http://a.test/x"))
    sink.started("evil\x1b[2J.bin", 100, 0)
    sink.retrying("http://a.test/x?k=s3cret: reset\x1b]0;pwned\x07", 2, 6, 1.0)  # type: ignore[attr-defined]
    view.close([], 1.0)
    text = buffer.getvalue()
    assert "\x1b[2J" not in text and "\x1b]0;" not in text
    assert "evil\\x1b[2J.bin" in rendered(buffer)
    assert "s3cret" not in text
    assert (
        "retrying http://a.test/x?k=***: reset\\x1b]0;pwned\\x07 (attempt 2 of 6, next in 1.0 s)"
        in (rendered(buffer))
    )


def test_bars_on_stderr_leave_the_lines_on_stdout() -> None:
    buffer, console = terminal()
    stdout, stderr = io.StringIO(), io.StringIO()
    lines = PlainReporter(Redactor([]), out=stdout, err=stderr)
    view = ProgressView(Redactor([]), console, files=1, lines=lines)
    spec = JobSpec(url="http://a.test/f.bin")
    view.sink(spec).started("f.bin", 10, 0)
    view.finished(spec, outcome(spec.url))
    view.close([outcome(spec.url)], 0.5)
    assert stdout.getvalue().splitlines()[0].startswith("done /out/f.bin")
    assert "1 ok, 0 failed" in stdout.getvalue()
    assert "done /out/f.bin" not in rendered(buffer)
    assert "1/1 files" in rendered(buffer)


async def test_json_on_stdout_and_the_bars_on_a_terminal_on_stderr(
    origin: Origin, cli: HaulerRunner
) -> None:
    for name in ("a.bin", "b.bin"):
        origin.add(name, 256 * 1024)
    main, child = os.openpty()
    seen = bytearray()
    reader = threading.Thread(target=_drain, args=(main, seen), daemon=True)
    reader.start()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hauler", "get", "--json", "-d", "out",
            origin.url("a.bin"), origin.url("b.bin"),
            cwd=cli.cwd, env=cli.environment() | {"TERM": "xterm"},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=child,
        )  # fmt: skip
        os.close(child)
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, _ = await process.communicate()
    finally:
        await asyncio.to_thread(reader.join, 10)
        os.close(main)
    shown = _ANSI.sub("", seen.decode(errors="replace"))
    assert process.returncode == 0, shown
    assert json.loads(out)["ok"] == 2
    assert "2/2 files" in shown, shown


def _drain(fd: int, into: bytearray) -> None:
    """Read the terminal until every writer has closed it (EIO on Linux)."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        into.extend(data)


def test_log_lines_go_through_the_display_and_stop_with_it() -> None:
    """-v with bars: a log record is printed by the bars' console (above them, not torn
    through them), escaped; after the display, logging writes where it did before."""
    import logging

    logger = logging.getLogger("hauler")
    saved = (list(logger.handlers), logger.level)
    plain = logging.StreamHandler(io.StringIO())
    plain.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers[:] = [plain]
    logger.setLevel(logging.INFO)
    try:
        buffer, console = terminal()
        view = ProgressView(Redactor([]), console, files=1)
        logging.getLogger("hauler.transfer.test").info("retry 1 in 0.50 s: reset by \x1b[2Jpeer")
        view.close([], 1.0)
        assert logger.handlers == [plain]
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
    assert "INFO retry 1 in 0.50 s: reset by \\x1b[2Jpeer" in rendered(buffer)
    assert "\x1b[2J" not in buffer.getvalue()
