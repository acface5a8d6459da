"""Media downloads killed in their middle and run again: they finish from what is on disk.

- ``hauler get`` of an HLS VOD, kill -9'ed mid-download: the second run fetches only the
  fragments yt-dlp's index does not have, and the file is the segments once each, in order;
- ``hauler get`` of a page whose video is a direct MP4 (our engine): the second run asks only
  for the ranges the control file lacks; the file is the source, byte for byte;
- ``hauler add`` + ``hauler worker``: a worker kill -9'ed mid-HLS, a second one takes the job
  when its lease runs out and finishes it from the first one's partial;
- the moments where yt-dlp's own bookkeeping is not crash-safe, as the state a kill there
  leaves on disk (``hauler.media.fragments`` puts it back in step before yt-dlp resumes).

The site runs in this event loop; ``hauler`` runs as a subprocess (asyncio's, so the site
keeps serving), rate-capped so that a kill lands in the middle.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import shutil
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hauler.errors import HaulerError
from hauler.media.fragments import DEFAULT_CONCURRENCY
from hauler.models import JobKind, JobSpec, JobState
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import Outcome
from hauler.pipeline.run import Pipeline
from hauler.store import open_store
from hauler.transfer.engine import Engine
from tests.cli.hauler_process import HAULER, hauler, hauler_env
from tests.fixtures.mediaprobe import ffprobe
from tests.media.long_media import (
    DURATION_S,
    LongMedia,
    build_long_media,
    decoded_digest,
    engine_done_bytes,
    fragment_index,
    segment_requests,
    work_dir,
)
from tests.media.site import MediaSite, media_site
from tests.worker.fleet import spawn_worker, transfer_settings, wait_exit

# Per connection: 4 connections take about 5 s over the 2 MiB of the HLS variant (40 segments
# of ~52 KB), the MP4's 0.9 MiB take about 4 s: time enough to kill in the middle.
RATE_BYTES_S = 100_000
MP4_RATE_BYTES_S = 60_000
KILL_AT_FRAGMENT = 10
POLL_S = 0.02
WAIT_S = 60.0
RUN_TIMEOUT_S = 120.0
# The engine splits a file this small only with a small minimum split, and its control file
# must reach the disk before the kill.
ENGINE_ENV = {
    "HAULER_TRANSFER__MIN_SPLIT_BYTES": str(64 * 1024),
    "HAULER_TRANSFER__CONTROL_FLUSH_S": "0.1",
    "HAULER_TRANSFER__CONTROL_FLUSH_BYTES": str(64 * 1024),
}


@pytest.fixture(scope="module")
def long_media(tmp_path_factory: pytest.TempPathFactory) -> LongMedia:
    """The 40 s HLS VOD and MP4, made once for the module."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg and ffprobe are needed: scripts/test installs them with apt-get")
    return build_long_media(tmp_path_factory.mktemp("long-media"))


@pytest.fixture
async def slow_site(long_media: LongMedia) -> AsyncIterator[MediaSite]:
    """The long media behind a per-connection rate cap."""
    async with media_site(long_media.root, rate_bytes_s=RATE_BYTES_S) as running:
        yield running


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def start_hauler(store_url: str, logs: Path, *args: str) -> asyncio.subprocess.Process:
    """``hauler ARGS`` in the background, its output in files (a pipe nobody reads fills)."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "killed.out", "wb") as out, open(logs / "killed.err", "wb") as err:
        return await asyncio.create_subprocess_exec(
            HAULER,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=hauler_env(store_url, **ENGINE_ENV),
        )


async def run_hauler(store_url: str, *args: str) -> tuple[int, str, str]:
    """``hauler ARGS`` to its end (bounded): exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        HAULER,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=hauler_env(store_url, **ENGINE_ENV),
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def kill_when(
    proc: asyncio.subprocess.Process, reached: Callable[[], bool], what: str
) -> None:
    """kill -9 ``proc`` as soon as ``reached()``; fail if it ends first or never gets there."""
    try:
        async with asyncio.timeout(WAIT_S):
            for _ in range(int(WAIT_S / POLL_S) + 1):
                if reached():
                    break
                assert proc.returncode is None, f"hauler ended ({proc.returncode}) before {what}"
                await asyncio.sleep(POLL_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def only_the_partial(out: Path) -> Path:
    """The work directory, after a kill: the only entry of ``out`` (no file under a final
    name), holding a partial."""
    work = work_dir(out)
    assert work is not None and [p.name for p in out.iterdir()] == [work.name]
    assert any(p.name.endswith(".part") and p.stat().st_size > 0 for p in work.iterdir())
    return work


def check_resumed_bytes(
    record: dict[str, Any], fetched_before_kill: int, downloaded: int | None = None
) -> None:
    """``resumed_bytes`` tells how much the second run took from the partial; with what this
    run fetched, it is the whole download (``downloaded``: the segments' bytes, before the
    remux into MP4; the file's size for a direct format)."""
    assert record["resumed_bytes"] >= fetched_before_kill > 0
    total = record["size"] if downloaded is None else downloaded
    assert record["resumed_bytes"] + record["bytes_fetched"] == total


def check_segments(
    first: Counter[str], second: Counter[str], media: LongMedia, appended: int, in_flight: int
) -> None:
    """The second run fetched only what the first had not appended, each once, and nothing
    appended before the kill; the fragments in flight at the kill (at most ``in_flight``) are
    the only ones both runs asked for (the second resumes them with a Range or, finished, takes
    them from the disk)."""
    total = len(media.segments)
    both = set(first) & set(second)
    print(f"{appended}/{total} segments appended at the kill; asked by run 1: {first.total()},")
    print(f"by run 2: {second.total()}, by both: {len(both)}")
    assert 0 < appended < total
    assert set(first) | set(second) == set(media.segments)
    assert not set(second) & set(media.segments[:appended]), "appended segments fetched again"
    assert all(n == 1 for n in second.values()), second.most_common(3)
    assert len(both) <= in_flight
    assert sum(first.values()) + sum(second.values()) < 2 * total


def check_hls_output(path: Path, media: LongMedia) -> None:
    """Every segment once, in order, and a video ffprobe reads with both streams."""
    assert decoded_digest(path) == media.hls_frames  # every frame, once, in order
    streams, duration_s = ffprobe(path)
    assert streams == {"video", "audio"}
    assert abs(duration_s - DURATION_S) <= 1.0


@pytest.mark.slow
async def test_hls_killed_mid_download_resumes_at_the_next_fragment(
    slow_site: MediaSite, long_media: LongMedia, tmp_path: Path
) -> None:
    out, store_url = tmp_path / "out", f"sqlite:///{tmp_path}/state.db"
    args = ("get", "--kind", "media", "-x", "4", "--json", "--no-progress", "-d", str(out))
    url = slow_site.media_url(long_media.hls_master)
    proc = await start_hauler(store_url, tmp_path / "logs", *args, url)
    await kill_when(proc, lambda: fragment_index(out) >= KILL_AT_FRAGMENT, "the kill")
    appended = fragment_index(out)
    work = only_the_partial(out)
    assert list(work.glob("*.ytdl"))
    before = len(slow_site.requests)

    code, stdout, stderr = await run_hauler(store_url, *args, url)

    assert code == 0, stderr
    [record] = json.loads(stdout)["files"]
    path = Path(record["path"])
    check_hls_output(path, long_media)
    assert [p.name for p in out.iterdir()] == [path.name]  # the work directory is gone
    first = segment_requests(slow_site.requests[:before], long_media)
    second = segment_requests(slow_site.requests[before:], long_media)
    check_segments(first, second, long_media, appended, in_flight=4)
    in_the_partial = sum(len(_segment_bytes(long_media, i)) for i in range(appended))
    segments = sum(len(_segment_bytes(long_media, i)) for i in range(len(long_media.segments)))
    assert record["bytes_fetched"] <= segments - in_the_partial
    check_resumed_bytes(record, in_the_partial, segments)


@pytest.mark.slow
async def test_a_direct_format_killed_mid_download_resumes_its_ranges(
    long_media: LongMedia, tmp_path: Path
) -> None:
    """The page's MP4 through our engine (-x 4): the second run asks only for what the
    control file lacks; the file is the source, byte for byte."""
    out, store_url = tmp_path / "out", f"sqlite:///{tmp_path}/state.db"
    args = ("get", "-x", "4", "--json", "--no-progress", "-d", str(out))
    size = long_media.mp4.size
    async with media_site(long_media.root, rate_bytes_s=MP4_RATE_BYTES_S) as site:
        proc = await start_hauler(store_url, tmp_path / "logs", *args, site.url("/video.html"))
        await kill_when(proc, lambda: engine_done_bytes(out) >= size // 4, "a quarter")
        done = engine_done_bytes(out)
        only_the_partial(out)
        first = [r for r in site.requests if r.path == "/media/direct.mp4"]
        before = len(site.requests)

        code, stdout, stderr = await run_hauler(store_url, *args, site.url("/video.html"))

        second = [r for r in site.requests[before:] if r.path == "/media/direct.mp4"]
    assert code == 0, stderr
    [record] = json.loads(stdout)["files"]
    path = Path(record["path"])
    assert record["kind"] == "media" and path.name == "Test pattern (1) [video-1].mp4"
    assert sha256(path) == long_media.mp4.sha256
    assert [p.name for p in out.iterdir()] == [path.name]
    assert len(first) > 1, "the engine did not split the file: the test needs ranges"
    # Nothing from the start again: every range of the second run begins inside the file.
    assert second and all(r.range and not r.range.startswith("bytes=0-") for r in second)
    assert record["bytes_fetched"] <= size - done
    check_resumed_bytes(record, done)


@pytest.mark.slow
async def test_a_second_worker_finishes_the_hls_job_of_a_killed_one(
    slow_site: MediaSite, long_media: LongMedia, tmp_path: Path
) -> None:
    """`hauler add --kind media`, a drain worker kill -9'ed mid-HLS: a second worker claims
    the job when the lease (2 s) runs out and resumes the first one's partial."""
    out, logs, store_url = tmp_path / "out", tmp_path / "logs", f"sqlite:///{tmp_path}/s.db"
    added = await hauler(
        store_url, "add", "--kind", "media", "--json", slow_site.media_url(long_media.hls_master)
    )
    assert added.code == 0, added.err
    worker_args = ("--mode", "drain", "--lease", "2")
    first_worker = await spawn_worker(store_url, out, logs, *worker_args)
    await kill_when(first_worker, lambda: fragment_index(out) >= KILL_AT_FRAGMENT, "the kill")
    appended = fragment_index(out)
    only_the_partial(out)
    before = len(slow_site.requests)

    second_worker = await spawn_worker(store_url, out, logs, *worker_args)

    assert await wait_exit(second_worker, timeout_s=RUN_TIMEOUT_S) == 0
    store = await open_store(store_url)
    try:
        [job] = await store.list_jobs()
    finally:
        await store.close()
    assert job.state is JobState.DONE and job.result is not None
    assert job.token == 2  # claimed once by each worker
    path = Path(job.result["path"])
    check_hls_output(path, long_media)
    assert [p.name for p in out.iterdir()] == [path.name]
    first = segment_requests(slow_site.requests[:before], long_media)
    second = segment_requests(slow_site.requests[before:], long_media)
    check_segments(first, second, long_media, appended, in_flight=DEFAULT_CONCURRENCY)


# The state a kill leaves at yt-dlp's unguarded moments, made on disk: a first run fails at
# segment MISSING (its file withheld), which leaves a partial, its index and the work directory;
# the test then edits that state as the kill would have left it.

MISSING = 20


async def run_media(url: str, out: Path) -> Outcome:
    """The pipeline ``hauler get`` runs, in this process."""
    async with Engine(transfer_settings()) as engine:
        spec = JobSpec(url=url, kind=JobKind.MEDIA)
        return await Pipeline(resolver_for(engine, None), out).run(spec)


@pytest.fixture
async def half_done(
    long_media: LongMedia, tmp_path: Path
) -> AsyncIterator[tuple[MediaSite, Path, Path]]:
    """A site over a copy of the media and an HLS download stopped by a missing segment:
    the site (the segment back in place), the output directory and the partial."""
    root = tmp_path / "media"
    shutil.copytree(long_media.root, root)
    segment = root / long_media.segments[MISSING].removeprefix("/media/")
    withheld = segment.with_name(segment.name + ".withheld")
    segment.rename(withheld)
    out = tmp_path / "out"
    async with media_site(root) as site:
        await fail_at_the_missing_segment(site.media_url(long_media.hls_master), out)
        withheld.rename(segment)
        yield site, out, partial_of(out, long_media)


async def fail_at_the_missing_segment(url: str, out: Path) -> None:
    with pytest.raises(HaulerError, match=r"(?i)fragment|404|not found"):
        await run_media(url, out)
    # yt-dlp never closes the response of a fragment's HTTP error (nor of its retries): the
    # sockets wait for the garbage collector, which would warn in whichever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def partial_of(out: Path, media: LongMedia) -> Path:
    """The partial after the failure: the segments its index counts, once each, in order (all
    those before the missing one, or fewer: the thread that gives up on the missing one closes
    the partial under the appends still to come)."""
    work = only_the_partial(out)
    [part] = [p for p in work.glob("*.part") if "-Frag" not in p.name]
    appended = fragment_index(out)
    assert 0 < appended <= MISSING
    assert part.read_bytes() == b"".join(_segment_bytes(media, i) for i in range(appended))
    return part


def _segment_bytes(media: LongMedia, index: int) -> bytes:
    return (media.root / media.segments[index].removeprefix("/media/")).read_bytes()


async def test_a_fragment_appended_before_its_index_was_written_is_not_appended_twice(
    half_done: tuple[MediaSite, Path, Path], long_media: LongMedia
) -> None:
    """Killed between yt-dlp's append of a fragment and the rewrite of NAME.ytdl: the
    partial holds one fragment more than the index, whose fragment file is still there."""
    site, out, part = half_done
    appended = fragment_index(out)
    content = _segment_bytes(long_media, appended)
    part.with_name(f"{part.name}-Frag{appended + 1}").write_bytes(content)
    with part.open("ab") as handle:
        handle.write(content)

    outcome = await run_media(site.media_url(long_media.hls_master), out)

    assert outcome.primary is not None
    check_hls_output(outcome.primary.path, long_media)


@pytest.mark.parametrize("index_text", [None, ""], ids=["index-gone", "index-empty"])
async def test_a_partial_without_a_readable_index_starts_over(
    half_done: tuple[MediaSite, Path, Path], long_media: LongMedia, index_text: str | None
) -> None:
    """Killed after yt-dlp removed NAME.ytdl at the end but before it renamed NAME.part (here
    a whole download), or while it rewrote NAME.ytdl (empty): yt-dlp alone would append the
    whole video to the partial."""
    site, out, part = half_done
    index = part.with_name(part.name.removesuffix(".part") + ".ytdl")
    if index_text is None:
        part.write_bytes(b"".join(_segment_bytes(long_media, i) for i in range(40)))
        index.unlink()
    else:
        index.write_text(index_text)

    outcome = await run_media(site.media_url(long_media.hls_master), out)

    assert outcome.primary is not None
    check_hls_output(outcome.primary.path, long_media)
