"""Media jobs end to end on the loopback site: the pipeline with the media handler (yt-dlp
extracts and chooses, our engine or yt-dlp's fragment downloader fetches, ffmpeg merges),
through ``hauler get`` and through a worker; every output read back with ffprobe."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hauler.errors import BotCheck, Fatal, Transient
from hauler.local.batch import Batch, BatchOptions
from hauler.local.outcome import FileOutcome
from hauler.models import JobKind, JobSpec, JobState, MediaOptions
from hauler.pipeline.kinds import resolver_for
from hauler.pipeline.outcome import Outcome, result_record
from hauler.pipeline.run import Pipeline
from hauler.redact import Redactor
from hauler.store import Store
from hauler.store.base import JobFilter
from hauler.transfer.engine import Engine
from tests.fixtures.mediaprobe import ffprobe
from tests.fixtures.reporters import QuietReporter
from tests.media.library import MediaLibrary
from tests.media.site import MediaSite
from tests.worker.fleet import add_urls, drain, transfer_settings

VIDEO_AUDIO = {"video", "audio"}


def media_spec(url: str, **options: object) -> JobSpec:
    return JobSpec(url=url, kind=JobKind.MEDIA, media=MediaOptions(**options))  # type: ignore[arg-type]


async def run_media(spec: JobSpec, out: Path, store: Store | None = None) -> Outcome:
    async with Engine(transfer_settings()) as engine:
        return await Pipeline(resolver_for(engine, store), out).run(spec)


async def hauler_get(home: Path, *args: str) -> bytes:
    """``hauler get ARGS`` run in ``home`` (its store there too) without blocking this loop,
    which serves the site; its stdout, once it exited 0."""
    home.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "hauler", "--store", f"sqlite:///{home}/state.db", "get", *args),
        cwd=home,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_video_page_gives_the_video_byte_for_byte(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    outcome = await run_media(media_spec(site.url("/video.html")), tmp_path)
    path = outcome.primary.path
    assert path == tmp_path / "Test pattern (1) [video-1].mp4"
    assert sha256(path) == library.direct.sha256
    streams, duration = ffprobe(path)
    assert streams == VIDEO_AUDIO and abs(duration - library.direct.duration_s) < 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no work dir left
    media = result_record(outcome)["media"]
    assert (media["extractor"], media["id"], media["info_cached"]) == (
        "HTML5MediaEmbed",
        "video-1",
        False,
    )


@pytest.mark.parametrize(("fmt", "height"), [("best", 240), ("120", 120), ("worst", 120)])
async def test_hls_gives_the_variant_the_format_asks_for(
    site: MediaSite, library: MediaLibrary, tmp_path: Path, fmt: str, height: int
) -> None:
    outcome = await run_media(media_spec(site.media_url(library.hls_master), format=fmt), tmp_path)
    streams, duration = ffprobe(outcome.primary.path)
    assert streams == VIDEO_AUDIO
    assert abs(duration - library.hls_duration_s) < 0.5
    assert result_record(outcome)["media"]["height"] == height


async def test_dash_video_and_audio_are_merged_into_one_file(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    outcome = await run_media(
        media_spec(site.media_url(library.dash_manifest), info_json=True), tmp_path
    )
    video = outcome.primary.path
    streams, duration = ffprobe(video)
    assert streams == VIDEO_AUDIO  # the merge kept both
    assert abs(duration - library.dash_duration_s) < 0.5
    assert result_record(outcome)["media"]["format_id"] == "0+1"
    sidecar = video.with_name(video.stem + ".info.json")
    assert json.loads(sidecar.read_text())["id"] == "manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([video.name, sidecar.name])


async def test_audio_only_from_dash_is_one_audio_stream(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    outcome = await run_media(
        media_spec(site.media_url(library.dash_manifest), format="audio"), tmp_path
    )
    streams, _ = ffprobe(outcome.primary.path)
    assert streams == {"audio"}


async def test_a_second_job_for_the_video_does_not_extract_again(
    site: MediaSite, library: MediaLibrary, tmp_path: Path, store: Store
) -> None:
    page = site.url("/video.html")
    first = await run_media(media_spec(page), tmp_path / "a", store)
    second = await run_media(media_spec(page, format="worst"), tmp_path / "b", store)
    assert result_record(first)["media"]["info_cached"] is False
    assert result_record(second)["media"]["info_cached"] is True
    assert site.count("/video.html") == 1  # one extraction for the two jobs
    assert sha256(second.primary.path) == library.direct.sha256


async def test_a_second_run_skips_the_finished_video(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    spec = media_spec(site.media_url(library.hls_master))
    await run_media(spec, tmp_path)
    segments = sum(1 for r in site.requests if r.path.endswith(".ts"))
    assert segments > 0
    again = await run_media(spec, tmp_path)
    assert again.skipped and again.bytes_fetched == 0
    assert sum(1 for r in site.requests if r.path.endswith(".ts")) == segments  # none again


@pytest.mark.parametrize(
    ("path", "error"),
    [("/wall/bot", BotCheck), ("/removed.html", Fatal), ("/broken.html", Transient)],
)
async def test_failures_are_classed_for_the_retry_policy(
    site: MediaSite, tmp_path: Path, path: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await run_media(media_spec(site.url(path)), tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_closed_port_is_a_network_error_to_retry(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Transient):
        await run_media(media_spec(f"http://127.0.0.1:{port}/watch.html"), tmp_path)


async def test_a_worker_runs_media_jobs_with_the_fleets_records(
    site: MediaSite, library: MediaLibrary, tmp_path: Path, store: Store
) -> None:
    """`hauler add --kind media` + a worker: done with the media record, the bot wall failed
    as bot_check, ffprobe-checked output."""
    ok, walled = await add_urls(
        store,
        [site.media_url(library.dash_manifest), site.url("/wall/bot")],
        kind=JobKind.MEDIA,
        max_attempts=1,
    )
    summary = await drain(store, tmp_path / "out")
    assert (summary.done, summary.failed) == (1, 1)
    done = await store.get(ok)
    assert done is not None and done.state is JobState.DONE and done.result is not None
    assert done.result["media"]["format_id"] == "0+1"
    streams, _ = ffprobe(Path(done.result["path"]))
    assert streams == VIDEO_AUDIO
    failed = await store.get(walled)
    assert failed is not None and failed.error is not None
    assert failed.error.error_class == "bot_check"


async def test_get_on_the_command_line(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """`hauler get --kind media -f 120 --json`: the HLS variant asked for, the record printed."""
    out = tmp_path / "out"
    stdout = await hauler_get(
        tmp_path,
        *("-d", str(out), "--kind", "media", "-f", "120", "--json", "--no-progress"),
        site.media_url(library.hls_master),
    )
    [record] = json.loads(stdout)["files"]
    assert record["ok"] and record["media"]["height"] == 120
    streams, _ = ffprobe(Path(record["path"]))
    assert streams == VIDEO_AUDIO


async def test_auto_runs_a_video_page_as_media_and_keeps_files_files(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """`auto`: a page yt-dlp reads is media (the video, not the HTML); a page with no video is
    saved as the page (as wget would); an MP4 is a plain file through the engine."""
    page = await run_media(JobSpec(url=site.url("/video.html")), tmp_path / "page")
    assert result_record(page)["kind"] == "media"
    assert sha256(page.primary.path) == library.direct.sha256
    empty = await run_media(JobSpec(url=site.url("/empty.html")), tmp_path / "empty")
    assert empty.kind is JobKind.FILE and empty.primary.path.name == "empty.html"
    assert b"No video on this page" in empty.primary.path.read_bytes()
    direct = await run_media(JobSpec(url=site.media_url("direct.mp4")), tmp_path / "direct")
    assert direct.kind is JobKind.FILE and sha256(direct.primary.path) == library.direct.sha256
    manifest = await run_media(JobSpec(url=site.media_url(library.hls_master)), tmp_path / "m")
    assert manifest.kind is JobKind.MEDIA
    assert ffprobe(manifest.primary.path)[0] == VIDEO_AUDIO


async def test_get_of_a_playlist_runs_each_entry(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """A playlist page through `get`'s batch: every entry downloaded (its own job), the
    playlist's outcome lists them; --playlist-items and --max-downloads choose."""
    specs = [media_spec(site.url("/playlist.html"))]
    outcomes = await run_batch(specs, tmp_path / "all")
    files = sorted(o.result.primary.path for o in outcomes if o.result and o.result.primary)
    assert [sha256(f) for f in files] == [c.sha256 for c in library.clips]
    [parent] = [o for o in outcomes if o.result is not None and o.result.primary is None]
    assert parent.result is not None and len(parent.result.spawned) == 3
    chosen = await run_batch(
        [media_spec(site.url("/playlist.html"), playlist_items="1,3")], tmp_path / "some"
    )
    assert _sizes(chosen) == sorted(library.clips[i].size for i in (0, 2))
    first = await run_batch([media_spec(site.url("/feed.xml"), max_downloads=1)], tmp_path / "one")
    assert _sizes(first) == [library.clips[0].size]


def _sizes(outcomes: list[FileOutcome]) -> list[int]:
    return sorted(o.result.primary.size for o in outcomes if o.result and o.result.primary)


async def run_batch(specs: list[JobSpec], out: Path) -> list[FileOutcome]:
    out.mkdir(parents=True, exist_ok=True)
    batch = Batch(
        specs,
        BatchOptions(output_dir=out, parallel=2, store_url=f"sqlite:///{out}/s.db"),
        QuietReporter(),
        Redactor.for_specs(specs),
    )
    await batch.run(transfer_settings())
    assert all(o.is_ok for o in batch.ordered()), [o.error for o in batch.ordered()]
    return batch.ordered()


async def test_a_worker_queues_a_playlists_entries_as_jobs(
    site: MediaSite, library: MediaLibrary, tmp_path: Path, store: Store
) -> None:
    """The playlist job completes with its entries; each entry is a job of its own (its own
    lease and record), done by the same drain."""
    [playlist] = await add_urls(store, [site.url("/playlist.html")], kind=JobKind.MEDIA)
    summary = await drain(store, tmp_path / "out")
    assert summary.done == 4  # the playlist and its three videos
    parent = await store.get(playlist)
    assert parent is not None and parent.result is not None
    assert parent.result["playlist"]["entries"] == 3 and parent.result["path"] is None
    entries = parent.result["entries"]
    jobs = [j for j in await store.list_jobs(JobFilter(state=JobState.DONE)) if j.id != playlist]
    assert sorted(j.spec.url for j in jobs) == sorted(entries)
    assert sorted(sha256(Path(j.result["path"])) for j in jobs if j.result) == sorted(
        c.sha256 for c in library.clips
    )


async def test_two_urls_of_one_video_download_once(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """The finished file is marked as the video (extractor and id), not as the URL: another
    URL of the same video (here the page with a query string) skips it."""
    first = await run_media(media_spec(site.url("/video.html")), tmp_path)
    again = await run_media(media_spec(site.url("/video.html?from=feed")), tmp_path)
    assert first.primary is not None and again.primary is not None
    assert again.skipped and again.primary.path == first.primary.path
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.primary.path.name]


def test_explicit_media_jobs_are_keyed_by_their_video() -> None:
    """At add time, a site extractor's URL pattern gives the id without any request."""
    from hauler.ops import keyed_by_video

    specs = [
        media_spec("https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
        media_spec("https://youtu.be/dQw4w9WgXcQ"),
        JobSpec(url="https://youtu.be/dQw4w9WgXcQ"),  # auto: not asked (cost), its URL is its key
        media_spec("http://127.0.0.1:9/video.html"),  # the generic extractor: no id from the URL
    ]
    keys = [spec.dedupe_key for spec in keyed_by_video(specs)]
    assert keys[0] == keys[1] == "Youtube:dQw4w9WgXcQ"
    assert keys[2] == "https://youtu.be/dQw4w9WgXcQ" and keys[3] == "http://127.0.0.1:9/video.html"


async def test_list_formats_prints_them_and_downloads_nothing(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    stdout = await hauler_get(
        tmp_path / "home",
        *("--list-formats", "--json", "-d", str(tmp_path / "out")),
        site.media_url(library.dash_manifest),
    )
    [record] = json.loads(stdout)
    by_id = {row["id"]: row for row in record["formats"]}
    assert by_id["0"]["resolution"] == "320x240" and by_id["0"]["acodec"] == "none"
    assert by_id["1"]["resolution"] == "audio only"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not any(r.path.endswith(".m4s") for r in site.requests)  # no fragment fetched


async def test_subtitles_and_thumbnail_land_beside_the_video(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """--write-subs and --write-thumbnail: the page's <track> and poster, named after the
    video, byte for byte; nothing staged is left."""
    spec = media_spec(site.url("/extras.html"), write_subs=True, write_thumbnail=True)
    outcome = await run_media(spec, tmp_path)
    video = outcome.primary
    assert video is not None and sha256(video.path) == library.direct.sha256
    stem = video.path.stem
    roles = {a.role: a.path for a in outcome.artifacts}
    assert roles["subtitle"] == tmp_path / f"{stem}.en.vtt"
    assert roles["subtitle"].read_text() == (library.root / "direct.en.vtt").read_text()
    assert roles["thumbnail"] == tmp_path / f"{stem}.jpg"
    assert sha256(roles["thumbnail"]) == sha256(library.root / "poster.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [video.path.name, f"{stem}.en.vtt", f"{stem}.jpg"]
    )
    plain = await run_media(media_spec(site.url("/extras.html")), tmp_path / "plain")
    assert [a.role for a in plain.artifacts] == ["media"]  # only when asked


async def test_the_cookie_file_reaches_our_engine_too(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """--cookies: yt-dlp reads the page with them and our engine fetches the format with them."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\ts3cret\n")
    out = tmp_path / "out"
    outcome = await run_media(media_spec(site.url("/video.html"), cookies=str(cookies)), out)
    assert outcome.primary is not None and sha256(outcome.primary.path) == library.direct.sha256
    media_requests = [r for r in site.requests if r.path == "/media/direct.mp4"]
    page_requests = [r for r in site.requests if r.path == "/video.html"]
    assert media_requests and page_requests
    assert all("sid=s3cret" in r.headers.get("Cookie", "") for r in media_requests + page_requests)


async def test_a_video_extracted_under_another_url_comes_from_the_cache(
    site: MediaSite,
    library: MediaLibrary,
    tmp_path: Path,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job for youtu.be/ID finds the info that a job for youtube.com/watch?v=ID cached under
    ``id:Youtube:ID`` (the URL pattern gives the id): no extraction, so no request leaves
    127.0.0.1. The cached info's formats point at the loopback site."""
    from hauler.media.extract import extract

    info = await extract(site.url("/video.html"))
    info |= {"extractor_key": "Youtube", "id": "dQw4w9WgXcQ", "title": "cached"}
    await store.put_info(["id:Youtube:dQw4w9WgXcQ"], info, 3600)

    async def no_extraction(url: str, options: object = None) -> dict[str, object]:
        raise AssertionError(f"extracted {url}: the cache was not read (and no request may leave)")

    monkeypatch.setattr("hauler.pipeline.media.extract", no_extraction)
    outcome = await run_media(media_spec("https://youtu.be/dQw4w9WgXcQ"), tmp_path, store)
    assert result_record(outcome)["media"]["info_cached"] is True
    assert outcome.primary is not None and sha256(outcome.primary.path) == library.direct.sha256
    assert outcome.primary.path.name == "cached [dQw4w9WgXcQ].mp4"


def container_of(path: Path) -> str:
    """ffprobe's format name of ``path`` (``mov,mp4,m4a,3gp,3g2,mj2`` for MP4)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return str(json.loads(out)["format"]["format_name"])


async def test_an_hls_video_named_mp4_is_an_mp4_in_a_relative_directory(
    site: MediaSite, library: MediaLibrary, tmp_path: Path
) -> None:
    """`get -d out` (relative) of an HLS VOD: the file lands in ./out (the work directory
    beside it, not at /), and it is an MP4 container, not MPEG-TS under an .mp4 name."""
    before = {p.name for p in Path("/").iterdir() if p.name.startswith(".hauler-media-")}
    stdout = await hauler_get(
        tmp_path, "-d", "out", "--json", "--no-progress", site.media_url(library.hls_master)
    )
    [record] = json.loads(stdout)["files"]
    path = Path(record["path"])
    assert path.parent == tmp_path / "out" and path.suffix == ".mp4"
    assert "mp4" in container_of(path)
    assert ffprobe(path)[0] == VIDEO_AUDIO
    after = {p.name for p in Path("/").iterdir() if p.name.startswith(".hauler-media-")}
    assert after == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [path.name]
