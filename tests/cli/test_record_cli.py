"""``hauler record`` and ``hauler add``'s live options, run as a user runs them: the real command
as a subprocess recording a live HLS stream ffmpeg writes in real time on 127.0.0.1, every part
it leaves checked with ffprobe."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.process import Completed, HaulerRunner, finish
from tests.live.probe import probe
from tests.live.stream import HlsStream, hls_stream

# How long a recording may take to close its parts once the stream ended or it was stopped.
CLOSE_TIMEOUT_S = 45.0
POLL_S = 0.1


@pytest.fixture
async def hls(tmp_path: Path) -> AsyncIterator[HlsStream]:
    """A live stream with a window of 6 one-second segments, already listing one."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg and ffprobe are needed: scripts/test installs them with apt-get")
    async with hls_stream(tmp_path / "stream") as stream:
        yield stream


def rooms_of(done: Completed) -> list[dict[str, Any]]:
    """The JSON object of each room ``--json`` printed, one a line."""
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def check_parts(room: dict[str, Any], out: Path) -> float:
    """Every listed part is on disk under its final name in ``out``, plays (video and audio)
    for the duration listed; their total."""
    total = 0.0
    for part in room["parts"]:
        path = Path(part["path"])
        if not path.is_absolute():
            path = out.parent / path
        assert path.parent.resolve() == out.resolve() and path.name.endswith(".ts")
        assert path.stat().st_size == part["bytes"] > 0
        probed = probe(path)
        assert probed.streams == {"video", "audio"}
        assert abs(probed.duration_s - part["duration_s"]) <= 0.5
        total += part["duration_s"]
    return total


def names_on_disk(out: Path) -> list[str]:
    return sorted(path.name for path in out.iterdir())


def listed_names(room: dict[str, Any]) -> list[str]:
    return sorted(Path(part["path"]).name for part in room["parts"])


async def wait_for_part(out: Path, timeout_s: float = 30.0) -> None:
    """Return once a closed part is under its final name in ``out``."""
    for _ in range(int(timeout_s / POLL_S)):
        if out.is_dir() and any(path.suffix == ".ts" for path in out.iterdir()):
            return
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"no part closed in {out} within {timeout_s} s")


async def wait_for_open_part(out: Path, timeout_s: float = 30.0) -> None:
    """Return once a part being written holds bytes (``*.ts.part``, not empty)."""
    for _ in range(int(timeout_s / POLL_S)):
        if any(p.name.endswith(".ts.part") and p.stat().st_size for p in out.iterdir()):
            return
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"no part open in {out} within {timeout_s} s")


@pytest.mark.slow
async def test_record_until_endlist_lists_playable_parts(
    hls: HlsStream, cli: HaulerRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = await cli.start("record", hls.url, "-o", "out", "--split", "3s", "--json")
    await hls.wait_for_segments(8)
    await wait_for_part(out)  # a part is under its final name while the recording goes on
    await hls.end()
    done = await finish(process)
    assert done.returncode == 0, done.stderr
    (room,) = rooms_of(done)
    assert room["url"] == hls.url and room["error"] is None
    assert room["end"] == "endlist" and room["gaps"] == []
    assert len(room["parts"]) >= 3
    total = check_parts(room, out)
    assert abs(total - room["recorded_s"]) <= 0.1 * room["recorded_s"]
    assert abs(total - hls.produced_s) <= 0.1 * hls.produced_s  # every second on air
    assert names_on_disk(out) == listed_names(room)  # nothing else, no .part left
    # stderr is no terminal: a line for each state the room went through, the end last.
    states = [line for line in done.stderr.splitlines() if line.startswith(f"{hls.url}: ")]
    assert any(line.startswith(f"{hls.url}: recording") for line in states)
    assert states[-1].startswith(f"{hls.url}: ended")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_closes_the_open_part_and_lists_it(
    hls: HlsStream, cli: HaulerRunner, tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    out = tmp_path / "out"
    process = await cli.start("record", hls.url, "-o", "out", "--split", "3s", "--json")
    await wait_for_part(out)
    await hls.wait_for_segments(2)
    await wait_for_open_part(out)  # a part open with media in it (the follower may lag)
    before = {name for name in names_on_disk(out) if name.endswith(".ts")}  # closed parts
    process.send_signal(signum)
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            done = await finish(process)
    except TimeoutError:
        process.send_signal(signal.SIGINT)  # the second Ctrl-C cancels
        await finish(process)
        pytest.fail(f"hauler record did not stop on {signum.name} (continuation.stop ignored)")
    assert done.returncode == status, done.stderr
    (room,) = rooms_of(done)
    assert room["end"] == "stopped" and room["error"] is None
    check_parts(room, out)
    listed = listed_names(room)
    assert names_on_disk(out) == listed  # the open part was closed: no .part left
    assert set(listed) > before  # ... and it is listed, probed, under its final name
    assert not any(name.endswith(".part") for name in listed)
    assert "stopped" in done.stderr


@pytest.mark.slow
async def test_a_rooms_file_with_a_bad_line_records_the_good_rooms(
    hls: HlsStream, cli: HaulerRunner, tmp_path: Path
) -> None:
    own = {"url": hls.url, "output": "mine.ts", "live": {"split_s": 2}}
    rooms = tmp_path / "rooms.txt"
    rooms.write_text(
        "\n".join(["# two rooms and a bad line", hls.url, "not a url", json.dumps(own)]) + "\n"
    )
    out = tmp_path / "out"
    process = await cli.start("record", "-i", "rooms.txt", "-o", "out", "--split", "3s", "--json")
    await hls.wait_for_segments(7)
    await hls.end()
    done = await finish(process)
    bad = [line for line in done.stderr.splitlines() if "line 3" in line]
    assert len(bad) == 1 and bad[0].startswith("hauler: rooms.txt line 3: ")
    assert done.returncode == 2  # the bad line, though every good room recorded
    plain, mine = sorted(rooms_of(done), key=lambda room: len(room["parts"]))
    for room in (plain, mine):
        assert room["end"] == "endlist" and room["error"] is None
        assert abs(check_parts(room, out) - hls.produced_s) <= 0.1 * hls.produced_s
    # The line's own split (2 s) won over the command's (3 s); its output named its parts.
    assert all(Path(p["path"]).name.startswith("mine.") for p in mine["parts"])
    assert max(p["duration_s"] for p in mine["parts"]) <= 2.5
    assert max(p["duration_s"] for p in plain["parts"]) > 2.5
    assert names_on_disk(out) == sorted(listed_names(plain) + listed_names(mine))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--split", "ten minutes"], "--split"),
        (["--split", "0s"], "--split"),
        (["--max-duration", "6x"], "--max-duration"),
        (["--notify-url", "ftp://127.0.0.1/hook"], "--notify-url"),
        (["--container", "mkv", "--remux", "mp4"], "--remux"),
    ],
)
async def test_a_bad_live_option_is_a_one_line_usage_error(
    cli: HaulerRunner, tmp_path: Path, args: list[str], option: str
) -> None:
    done = await cli.run("record", "http://127.0.0.1:9/live.m3u8", "-o", "out", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hauler: ") and option in lines[0]
    assert not (tmp_path / "out").exists()  # refused before anything started


async def test_add_stores_the_live_options(cli: HaulerRunner) -> None:
    url = "http://127.0.0.1:9/room/live.m3u8"
    added = await cli.run("add", "--kind", "live", "--split", "10s", "--watch", url, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] == 1
    listed = await cli.run("jobs", "--json")
    (job,) = json.loads(listed.stdout)
    assert job["spec"]["kind"] == "live"
    assert job["spec"]["live"] == {"split_s": 10.0, "watch": True}


async def test_add_with_a_bad_live_option_stores_nothing(cli: HaulerRunner) -> None:
    url = "http://127.0.0.1:9/room/live.m3u8"
    done = await cli.run("add", "--kind", "live", "--poll", "soon", url)
    assert done.returncode == 2 and "--poll" in done.stderr
    listed = await cli.run("jobs", "--json")
    assert json.loads(listed.stdout) == []


def test_the_view_shows_each_room_redacted_and_printable() -> None:
    from rich.console import Console

    from hauler.cli.recordview import RecordView
    from hauler.redact import Redactor

    secret_room = "http://user:hunter2@127.0.0.1:9/a\x1b[2J.m3u8"
    lines = io.StringIO()
    view = RecordView(Redactor.for_specs([]), lines=lines, is_live=False)
    sink = view.sink(secret_room)
    sink.live_state("recording", 2, 65.0)
    sink.advanced(4096)
    view.gaps(sink.row, 1)
    sink.live_state("recording", 2, 66.0)  # no new state or part: no new line
    sink.live_state("reconnecting", 2, 66.0)
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(view.table())
    shown = console.export_text()
    logged = lines.getvalue().splitlines()
    for text in (shown, *logged):
        assert "hunter2" not in text and "\x1b" not in text
    assert "http://user:***@127.0.0.1:9/a\\x1b[2J.m3u8" in shown
    row = next(line for line in shown.splitlines() if "127.0.0.1" in line).split()
    assert row[1:] == ["reconnecting", row[2], "4.0", "KiB", row[5], row[6], "2", "0:01:06", "1"]
    assert [line.split(": ", 1)[1] for line in logged] == [
        "recording, part 2, 0:01:05 recorded",
        "reconnecting, part 2, 0:01:06 recorded, 1 gap",
    ]
