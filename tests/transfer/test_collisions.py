"""A taken final name: a file is this download's only when hauler marked it so (defect 6).

Two URLs that map to one name get two files (``x.bin``, ``x.1.bin``); a file the user put there
is never counted complete, nor overwritten by default; ``skip``, ``overwrite`` and ``continue``
keep wget's and aria2c's meanings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hauler.errors import ConnectionFailed
from hauler.models import JobState, OnExisting
from hauler.store import Store
from hauler.transfer import marks
from hauler.transfer.engine import Engine
from hauler.transfer.request import NullProgress, TransferRequest
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, leftovers, sha256_file
from tests.transfer.origin import Fault, Origin, content
from tests.worker.fleet import add_urls, drain, sha256_of

USERS = b"a file the user put here\n"


def same_name(origin: Origin, *names: str, size: int = 300 * KIB) -> list[str]:
    """Files ``names`` that all call themselves ``x.bin`` (Content-Disposition); their URLs."""
    for index, name in enumerate(names):
        origin.add(name, size + index, disposition='attachment; filename="x.bin"')
    return [origin.url(name) for name in names]


def gets(origin: Origin, name: str) -> int:
    return len([r for r in origin.requests_for(name) if r.method == "GET"])


async def test_two_urls_with_one_name_make_two_files(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    url_a, url_b = same_name(origin, "a.bin", "b.bin")
    first = await fetch(engine, url_a, tmp_path)
    second = await fetch(engine, url_b, tmp_path)
    assert (first.path.name, second.path.name) == ("x.bin", "x.1.bin")
    assert not second.skipped
    assert sha256_file(first.path) == origin.sha256("a.bin")
    assert sha256_file(second.path) == origin.sha256("b.bin")
    # A rerun knows each file by its mark: both skipped, the second without a GET either.
    again = [await fetch(engine, url, tmp_path) for url in (url_a, url_b)]
    assert [r.skipped for r in again] == [True, True]
    assert [r.path.name for r in again] == ["x.bin", "x.1.bin"]
    assert sha256_file(tmp_path / "x.1.bin") == origin.sha256("b.bin")


async def test_concurrent_downloads_racing_for_one_name_get_distinct_names(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    names = [f"r{i}.bin" for i in range(5)]
    urls = same_name(origin, *names, size=1 * MIB)
    results = await asyncio.gather(*(fetch(engine, url, tmp_path) for url in urls))
    assert sorted(r.path.name for r in results) == [
        "x.1.bin",
        "x.2.bin",
        "x.3.bin",
        "x.4.bin",
        "x.bin",
    ]
    for name, result in zip(names, results, strict=True):
        assert sha256_file(result.path) == origin.sha256(name)
    assert leftovers(tmp_path) == []


async def test_a_users_file_is_neither_complete_nor_overwritten(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("x.bin", 300 * KIB)
    (tmp_path / "x.bin").write_bytes(USERS)
    first = await fetch(engine, origin.url("x.bin"), tmp_path)
    assert first.path.name == "x.1.bin" and not first.skipped
    assert sha256_file(first.path) == origin.sha256("x.bin")
    # Named by the job this time: the user's file is passed over, the download found.
    again = await fetch(engine, origin.url("x.bin"), tmp_path, filename="x.bin")
    assert again.path.name == "x.1.bin" and again.skipped
    assert (tmp_path / "x.bin").read_bytes() == USERS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.1.bin", "x.bin"]


async def test_a_changed_file_is_not_ours_any_more(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("x.bin", 300 * KIB)
    first = await fetch(engine, origin.url("x.bin"), tmp_path)
    with first.path.open("ab") as file:
        file.write(b"appended by the user")
    second = await fetch(engine, origin.url("x.bin"), tmp_path)
    assert second.path.name == "x.1.bin" and not second.skipped
    assert sha256_file(second.path) == origin.sha256("x.bin")


async def test_skip_leaves_any_file_without_a_request(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("x.bin", 300 * KIB)
    (tmp_path / "x.bin").write_bytes(USERS)
    skip = OnExisting.SKIP
    result = await fetch(engine, origin.url("x.bin"), tmp_path, filename="x.bin", on_existing=skip)
    assert result.skipped and result.size == len(USERS)
    assert origin.requests_for("x.bin") == []
    assert (tmp_path / "x.bin").read_bytes() == USERS


async def test_overwrite_replaces_the_file(origin: Origin, engine: Engine, tmp_path: Path) -> None:
    origin.add("x.bin", 300 * KIB)
    (tmp_path / "x.bin").write_bytes(USERS)
    again = OnExisting.OVERWRITE
    result = await fetch(engine, origin.url("x.bin"), tmp_path, on_existing=again)
    assert result.path.name == "x.bin" and not result.skipped
    assert sha256_file(tmp_path / "x.bin") == origin.sha256("x.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


async def test_continue_takes_the_file_as_the_first_bytes(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("x.bin", 2 * MIB)
    start = 700 * KIB
    (tmp_path / "x.bin").write_bytes(content("x.bin", 1, 0, start))  # as wget left it
    keep_on = OnExisting.CONTINUE
    result = await fetch(
        engine, origin.url("x.bin"), tmp_path, filename="x.bin", on_existing=keep_on
    )
    assert result.resumed_bytes == start and result.bytes_fetched == 2 * MIB - start
    assert origin.requests_for("x.bin")[0].range == f"bytes={start}-"
    assert sha256_file(tmp_path / "x.bin") == origin.sha256("x.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]
    # Complete and marked now: the next run skips it.
    again = await fetch(
        engine, origin.url("x.bin"), tmp_path, filename="x.bin", on_existing=keep_on
    )
    assert again.skipped


async def test_continue_starts_over_when_the_server_cannot_resume(
    origin: Origin, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    origin.add("x.bin", 300 * KIB, accepts_ranges=False)
    (tmp_path / "x.bin").write_bytes(USERS)
    keep_on = OnExisting.CONTINUE
    with caplog.at_level(logging.INFO, logger="hauler.transfer.download"):
        result = await fetch(
            engine, origin.url("x.bin"), tmp_path, filename="x.bin", on_existing=keep_on
        )
    assert result.resumed_bytes == 0
    assert sha256_file(tmp_path / "x.bin") == origin.sha256("x.bin")
    assert "starting over" in caplog.text


async def test_a_partial_of_this_url_resumes_and_of_another_url_is_left_alone(
    origin: Origin, tmp_path: Path
) -> None:
    cut = 600 * KIB
    url_a, url_b = same_name(origin, "a.bin", "b.bin", size=2 * MIB)
    origin.files["a.bin"].faults = {1: Fault(close_after=cut)}
    async with Engine(fast_settings(segment_retries=0, connections=1)) as engine:
        with pytest.raises(ConnectionFailed):
            await fetch(engine, url_a, tmp_path)
    assert leftovers(tmp_path) == ["x.bin.part", "x.bin.part.json"]
    async with Engine(fast_settings()) as engine:
        other = await fetch(engine, url_b, tmp_path)  # x.bin's partial is a.bin's
        assert other.path.name == "x.1.bin"
        # Its probe did not ask from where a.bin's partial stops.
        assert origin.requests_for("b.bin")[0].range != f"bytes={cut}-"
        assert sha256_file(other.path) == origin.sha256("b.bin")
        mine = await fetch(engine, url_a, tmp_path)
    assert mine.path.name == "x.bin" and mine.resumed_bytes == cut
    assert sha256_file(mine.path) == origin.sha256("a.bin")


async def test_an_empty_unmarked_partial_is_taken_not_skipped_over(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    """A process killed between creating ``x.bin.part`` and marking it leaves an empty file
    with no mark and no control file: no one's bytes, so the download takes its name."""
    origin.add("x.bin", 200 * KIB)
    (tmp_path / "x.bin.part").touch()
    result = await fetch(engine, origin.url("x.bin"), tmp_path)
    assert result.path == tmp_path / "x.bin"
    assert sha256_file(result.path) == origin.sha256("x.bin")
    assert leftovers(tmp_path) == []


async def test_a_skipped_complete_file_loses_its_stale_control_file(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    """Killed between the commit's rename and the control file's removal, a worker leaves
    ``x.bin.part.json`` beside the complete file; the next run of the URL skips the file and
    removes the leftover."""
    origin.add("x.bin", 200 * KIB)
    done = await fetch(engine, origin.url("x.bin"), tmp_path)
    (tmp_path / "x.bin.part.json").write_text('{"url": "stale"}')
    again = await fetch(engine, origin.url("x.bin"), tmp_path)
    assert again.skipped and again.path == done.path
    assert leftovers(tmp_path) == []


async def test_the_mark_names_the_url_and_size(
    origin: Origin, engine: Engine, tmp_path: Path
) -> None:
    origin.add("m.bin", 100 * KIB)
    result = await fetch(engine, origin.url("m.bin"), tmp_path)
    raw = os.getxattr(result.path, marks.ATTRIBUTE)
    assert raw.decode() == f"{marks.url_key(origin.url('m.bin'))} {100 * KIB}"
    # Every spelling of the URL is the same download.
    assert marks.url_key(origin.url("m.bin").replace("http://", "HTTP://")) == marks.url_key(
        origin.url("m.bin")
    )


async def test_two_worker_jobs_with_one_name(store: Store, origin: Origin, tmp_path: Path) -> None:
    urls = same_name(origin, "a.bin", "b.bin", "c.bin")
    ids = await add_urls(store, urls)
    summary = await drain(store, tmp_path)
    assert (summary.done, summary.failed) == (3, 0)
    paths = []
    for job_id, name in zip(ids, ["a.bin", "b.bin", "c.bin"], strict=True):
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.DONE and job.result is not None
        assert not job.result["skipped"]
        paths.append(Path(job.result["path"]))
        assert sha256_of(paths[-1]) == origin.sha256(name)
    assert sorted(p.name for p in paths) == ["x.1.bin", "x.2.bin", "x.bin"]


@pytest.fixture
def no_xattr_dir(tmp_path: Path) -> Iterator[Path]:
    """A ramfs: a real file system that keeps no user extended attributes (needs root)."""
    mount_point = tmp_path / "ramfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "ramfs", "ramfs", str(mount_point)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a ramfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_without_marks_a_file_is_never_known_as_ours(
    origin: Origin, no_xattr_dir: Path
) -> None:
    cut = 600 * KIB
    origin.add("x.bin", 2 * MIB, faults={1: Fault(close_after=cut)})
    async with Engine(fast_settings(segment_retries=0, connections=1)) as engine:
        with pytest.raises(ConnectionFailed):
            await fetch(engine, origin.url("x.bin"), no_xattr_dir)
    async with Engine(fast_settings()) as engine:
        # The partial is still this URL's by its control file: it resumes.
        first = await fetch(engine, origin.url("x.bin"), no_xattr_dir)
        assert first.path.name == "x.bin" and first.resumed_bytes == cut
        # The complete file carries no mark: a rerun cannot know it, so it takes a new name
        # rather than overwrite or skip a file that may not be this download.
        second = await fetch(engine, origin.url("x.bin"), no_xattr_dir)
    assert second.path.name == "x.1.bin" and not second.skipped
    for path in (first.path, second.path):
        assert sha256_file(path) == origin.sha256("x.bin")


async def test_the_probe_of_a_colliding_url_ignores_the_other_partial(
    origin: Origin, tmp_path: Path
) -> None:
    # Two URLs whose paths end in one name: /files/y.bin and a redirect to it.
    cut = 600 * KIB
    origin.add("y.bin", 2 * MIB, faults={1: Fault(close_after=cut)})
    async with Engine(fast_settings(segment_retries=0, connections=1)) as engine:
        with pytest.raises(ConnectionFailed):
            await fetch(engine, origin.url("y.bin"), tmp_path)
    origin.log.clear()
    async with Engine(fast_settings()) as engine:
        other = await fetch(engine, origin.url("y.bin", redirects=1), tmp_path)
    assert other.path.name == "y.1.bin" and other.resumed_bytes == 0
    assert sha256_file(other.path) == origin.sha256("y.bin")
    assert origin.log[0].range != f"bytes={cut}-"
    assert leftovers(tmp_path) == ["y.bin.part", "y.bin.part.json"]


@pytest.mark.parametrize("policy", [OnExisting.RENAME, OnExisting.OVERWRITE])
async def test_a_file_that_appears_under_the_name_meanwhile(
    origin: Origin, engine: Engine, tmp_path: Path, policy: OnExisting
) -> None:
    """The name was free when the download chose it; another program writes a file there while
    it runs. The commit never replaces it (the download takes x.1.bin), unless overwriting."""
    origin.add("x.bin", 512 * KIB, rate_bps=1024 * KIB)
    started = _StartedEvent()
    request = TransferRequest(url=origin.url("x.bin"), output_dir=tmp_path, on_existing=policy)
    task = asyncio.create_task(engine.download(request, started))
    async with asyncio.timeout(10):
        await started.event.wait()  # the name is chosen and its .part open
    assert (tmp_path / "x.bin.part").exists()
    (tmp_path / "x.bin").write_bytes(USERS)
    result = await task
    assert sha256_file(result.path) == origin.sha256("x.bin")
    if policy is OnExisting.OVERWRITE:
        assert result.path.name == "x.bin"
    else:
        assert result.path.name == "x.1.bin"
        assert (tmp_path / "x.bin").read_bytes() == USERS
    assert leftovers(tmp_path) == []


class _StartedEvent(NullProgress):
    """A progress sink that tells when the file's name and size are known."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def started(self, name: str, total_bytes: int | None, done_bytes: int) -> None:
        self.event.set()
