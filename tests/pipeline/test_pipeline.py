"""hauler.pipeline: the resolver, the acquire seam, and the verify and finalize stages every
kind that stages its files goes through (a test handler stages real files; the file handler
runs the real engine against the loopback origin)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from hauler.errors import BadMedia, BadRequest, ContentMismatch, Forbidden
from hauler.models import Checksum, JobKind, JobSpec, OnExisting
from hauler.pipeline.handler import JobRun, Resources, RunOptions
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import Artifact, Expectation, Outcome, result_record
from hauler.pipeline.resolve import Resolver
from hauler.pipeline.run import Pipeline
from hauler.transfer import marks
from hauler.transfer.engine import Engine
from tests.transfer.origin import Origin
from tests.worker.fleet import transfer_settings

KIB = 1024
# The kind the staging handler stands in for (media and live register kinds of their own).
KIND = JobKind.FILE
BODY = b"staged bytes " * 1000


@dataclass
class Staging:
    """A handler of its own kind that writes ``body`` under a temporary name and stages it."""

    body: bytes = BODY
    expect: Expectation = field(default_factory=Expectation)
    name: str = "clip.bin"
    seen: list[JobRun] = field(default_factory=list)

    async def run(self, job: JobRun) -> Outcome:
        self.seen.append(job)
        staged = job.output_dir / f".{self.name}.staging"
        staged.write_bytes(self.body)
        artifact = Artifact(
            job.output_dir / self.name,
            len(self.body),
            role="media",
            staged=staged,
            expect=self.expect,
        )
        return Outcome(KIND, job.spec.url, job.spec.url, (artifact,), len(self.body), 0.1)


def staging_pipeline(handler: Staging, out: Path, **options: object) -> Pipeline:
    resolver = Resolver()
    resolver.register(KIND, handler)
    return Pipeline(resolver, out, options=RunOptions(**options))  # type: ignore[arg-type]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- resolve -----------------------------------------------------------------------------------


def test_auto_is_a_file_unless_a_kind_claims_the_url() -> None:
    resolver = Resolver()
    assert resolver.kind_of(JobSpec(url="http://h.test/f.bin")) is JobKind.FILE
    resolver.register(JobKind.FILE, Staging(), recognizes=lambda url: "watch" in url)
    assert resolver.kind_of(JobSpec(url="http://h.test/watch?v=1")) is JobKind.FILE
    assert resolver.kinds == {JobKind.FILE}


def test_a_kind_without_a_handler_is_a_bad_request_not_a_crash() -> None:
    resolver = Resolver()
    with pytest.raises(BadRequest, match="cannot run file jobs"):
        resolver.handler_for(JobKind.FILE)
    with pytest.raises(BadRequest, match=r"cannot run media jobs: yt-dlp is not installed"):
        resolver.handler_for(JobKind.MEDIA)
    with pytest.raises(ValueError, match="auto"):
        resolver.register(JobKind.AUTO, Staging())


# -- verify + finalize -------------------------------------------------------------------------


async def test_a_staged_file_is_checked_then_renamed_and_marked_as_the_urls(
    tmp_path: Path,
) -> None:
    expect = Expectation(
        size=len(BODY), checksum=Checksum(algorithm="sha256", hexdigest=sha256(BODY))
    )
    pipeline = staging_pipeline(Staging(expect=expect), tmp_path)
    outcome = await pipeline.run(JobSpec(url="http://h.test/a.page"))
    final = tmp_path / "clip.bin"
    assert outcome.primary.path == final and outcome.primary.is_final
    assert outcome.primary.checksum == sha256(BODY)
    assert sha256(final.read_bytes()) == sha256(BODY)
    assert sorted(os.listdir(tmp_path)) == ["clip.bin"]  # nothing staged is left
    assert marks.is_complete(final, marks.url_key("http://h.test/a.page"))
    record = result_record(outcome)
    assert (record["path"], record["size"]) == (str(final), len(BODY))


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (Expectation(size=len(BODY) + 1), "bytes on disk, expected"),
        (Expectation(checksum=Checksum(algorithm="sha256", hexdigest="0" * 64)), "sha256 is"),
    ],
)
async def test_a_staged_file_that_fails_never_gets_its_final_name(
    tmp_path: Path, expect: Expectation, message: str
) -> None:
    pipeline = staging_pipeline(Staging(expect=expect), tmp_path)
    with pytest.raises(ContentMismatch, match=message):
        await pipeline.run(JobSpec(url="http://h.test/a.page"))
    assert os.listdir(tmp_path) == []  # neither a final name nor the wrong bytes


async def test_a_taken_name_gives_the_next_one_and_overwrite_replaces_it(tmp_path: Path) -> None:
    (tmp_path / "clip.bin").write_bytes(b"someone else's")
    first = await staging_pipeline(Staging(), tmp_path).run(JobSpec(url="http://h.test/a.page"))
    assert first.primary.path == tmp_path / "clip.1.bin"
    assert (tmp_path / "clip.bin").read_bytes() == b"someone else's"
    assert (tmp_path / "clip.1.bin").read_bytes() == BODY
    pipeline = staging_pipeline(Staging(body=b"new"), tmp_path, on_existing=OnExisting.OVERWRITE)
    second = await pipeline.run(JobSpec(url="http://h.test/a.page"))
    assert second.primary.path == tmp_path / "clip.bin"
    assert (tmp_path / "clip.bin").read_bytes() == b"new"


async def test_a_link_planted_under_the_final_name_is_not_followed(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside.txt"
    out.mkdir()
    outside.write_bytes(b"precious")
    (out / "clip.bin").symlink_to(outside)
    outcome = await staging_pipeline(Staging(), out).run(JobSpec(url="http://h.test/a.page"))
    assert outcome.primary.path == out / "clip.1.bin"
    assert outside.read_bytes() == b"precious"
    assert (out / "clip.1.bin").read_bytes() == BODY


# -- verify with ffprobe -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Three seconds of 160x120 video and a sine tone, made by ffmpeg."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-f", "lavfi"),
            *("-i", "testsrc=size=160x120:rate=10:duration=3", "-f", "lavfi"),
            *("-i", "sine=frequency=440:duration=3", "-c:v", "libx264", "-preset", "ultrafast"),
            *("-c:a", "aac", "-shortest", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (Expectation(streams=frozenset({"video", "audio"}), duration_s=3.0), None),
        (Expectation(streams=frozenset({"video"}), duration_s=3.5), None),  # within 1 s
        (Expectation(streams=frozenset({"subtitle"})), "no subtitle stream"),
        (Expectation(duration_s=60.0), "long, expected 60.0 s"),
    ],
)
async def test_ffprobe_checks_the_promised_streams_and_duration(
    tmp_path: Path, clip: bytes, expect: Expectation, message: str | None
) -> None:
    pipeline = staging_pipeline(Staging(body=clip, expect=expect, name="clip.mp4"), tmp_path)
    if message is None:
        outcome = await pipeline.run(JobSpec(url="http://h.test/a.page"))
        assert sha256((tmp_path / "clip.mp4").read_bytes()) == sha256(clip)
        assert outcome.primary.path.name == "clip.mp4"
        return
    with pytest.raises(BadMedia, match=message):
        await pipeline.run(JobSpec(url="http://h.test/a.page"))
    assert os.listdir(tmp_path) == []


async def test_a_file_ffprobe_cannot_read_is_bad_media(tmp_path: Path, clip: bytes) -> None:
    truncated = clip[: len(clip) // 3]
    expect = Expectation(streams=frozenset({"video"}))
    pipeline = staging_pipeline(
        Staging(body=b"<html>not a video" + truncated, expect=expect), tmp_path
    )
    with pytest.raises(BadMedia, match="ffprobe cannot read it"):
        await pipeline.run(JobSpec(url="http://h.test/a.page"))
    assert os.listdir(tmp_path) == []


# -- acquire -----------------------------------------------------------------------------------


class Lending:
    """A broker that lends one proxy and an account's header, and sees how each run ended."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    @asynccontextmanager
    async def _lend(self) -> AsyncIterator[Resources]:
        try:
            yield Resources(proxy="http://proxy.test:3128", headers={"Cookie": "sid=1"})
        except Exception as exc:
            self.ended.append(type(exc).__name__)
            raise
        self.ended.append("ok")

    def acquire(self, spec: JobSpec) -> AbstractAsyncContextManager[Resources]:
        return self._lend()


async def test_the_handler_runs_with_what_the_broker_lent_and_the_broker_sees_the_end(
    tmp_path: Path,
) -> None:
    handler, broker = Staging(), Lending()
    resolver = Resolver()
    resolver.register(KIND, handler)
    pipeline = Pipeline(resolver, tmp_path, broker=broker)
    await pipeline.run(JobSpec(url="http://h.test/a", headers={"X": "1"}))
    [job] = handler.seen
    assert job.resources.proxy == "http://proxy.test:3128"
    assert job.headers == {"X": "1", "Cookie": "sid=1"}

    class Refusing(Staging):
        async def run(self, job: JobRun) -> Outcome:
            raise Forbidden("403 from the origin")

    resolver.register(KIND, Refusing())
    with pytest.raises(Forbidden):
        await pipeline.run(JobSpec(url="http://h.test/b"))
    assert broker.ended == ["ok", "Forbidden"]


# -- the file handler --------------------------------------------------------------------------


async def test_the_file_handler_keeps_the_record_every_command_printed(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("f.bin", 70 * KIB)
    async with Engine(transfer_settings()) as engine:
        pipeline = Pipeline(resolver_for(engine), tmp_path, durable=True)
        outcome = await pipeline.run(JobSpec(url=origin.url("f.bin")))
    assert sha256((tmp_path / "f.bin").read_bytes()) == origin.sha256("f.bin")
    record = result_record(outcome)
    assert list(record) == [
        "path", "size", "final_url", "bytes_fetched", "resumed_bytes", "elapsed_s", "skipped",
        "checksum", "etag", "last_modified", "content_type",
    ]  # fmt: skip
    assert (record["size"], record["bytes_fetched"], record["skipped"]) == (
        70 * KIB,
        70 * KIB,
        False,
    )


@pytest.mark.parametrize(
    ("url", "is_file"),
    [
        ("http://h.test/big.iso", True),
        ("http://h.test/clip.mp4", True),
        ("http://h.test/a/archive.tar.gz", True),
        ("http://h.test/watch?v=abc", False),
        ("http://h.test/video/123", False),
        ("http://h.test/page.html", True),
        ("http://h.test/index.php?id=3", True),
        ("http://h.test/", False),
    ],
)
def test_only_urls_without_an_extension_are_asked_of_the_extractors(
    url: str, is_file: bool
) -> None:
    from hauler.pipeline.kinds import has_extension

    assert has_extension(url) is is_file


async def test_a_rejected_video_takes_its_scratch_directory_with_it(tmp_path: Path) -> None:
    """What made a file ffprobe rejects (a merge's inputs, a fragment download's state) would
    make it again: the handler's scratch directory is removed with it, so the retry starts
    clean."""

    class Scratching(Staging):
        async def run(self, job: JobRun) -> Outcome:
            scratch = job.output_dir / ".work"
            scratch.mkdir()
            (scratch / "f0.mp4").write_bytes(b"not a video")
            outcome = await super().run(job)
            return replace(outcome, scratch=scratch)

    handler = Scratching(body=b"not a video either", expect=Expectation(is_media=True))
    with pytest.raises(BadMedia, match="ffprobe cannot read it"):
        await staging_pipeline(handler, tmp_path).run(JobSpec(url="http://h.test/a.page"))
    assert list(tmp_path.iterdir()) == []
