"""A live HLS stream made in real time: ffmpeg (``-re``, ``testsrc`` + ``sine``, 1 s segments)
writes a sliding-window playlist into a directory, and a small aiohttp app on 127.0.0.1 serves
it, with controls a test drives to make the outages a recorder must survive.

- ``stall()``: the playlist is served as it is now, without updates (ffmpeg keeps going, so the
  window slides on behind the stale copy and its segments vanish from the disk);
- ``go_missing()``: the playlist answers 404; ``fail(500)``: it answers that status;
  ``hang()``: a request for it gets no answer until ``resume()``; ``reset()``: the connection
  is closed without an answer;
- ``resume()``: the live playlist again;
- ``restart()``: the encoder is killed and a new one continues the media sequence, appending to
  the playlist (``append_list``: ffmpeg writes ``#EXT-X-DISCONTINUITY``) or, with
  ``keep_window=False``, in a new playlist from ``-start_number`` on;
- ``off_air()``: the encoder is killed, the playlist stays as it last was;
- ``end()``: the encoder is killed and ``#EXT-X-ENDLIST`` appended to the playlist.

``requests`` logs every request (path, status); ``produced`` is every segment the encoders
listed (sequence number → duration), watched from the disk, so a test knows how much media
the stream put on air. Every ffmpeg runs with ``-t`` (it ends by itself) and is killed at
``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from aiohttp import web

PLAYLIST = "live.m3u8"
MASTER = "master.m3u8"  # a master playlist over the live one (``master_url``)
FPS = 25
# An encoder never outlives this, even when a test forgets to close the stream.
MAX_ENCODER_S = 180
# How long ffmpeg may take to list its first segment (it starts in ~0.3 s; a segment is 1 s).
FIRST_SEGMENT_TIMEOUT_S = 15.0
WATCH_INTERVAL_S = 0.1
_MEDIA_SEQUENCE = re.compile(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)", re.MULTILINE)
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)", re.MULTILINE)
CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}


class Mode(StrEnum):
    """How the playlist is answered."""

    LIVE = "live"
    STALLED = "stalled"
    MISSING = "missing"
    FAILING = "failing"
    HUNG = "hung"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the stream's server answered (status 0: closed without an answer)."""

    path: str
    status: int
    at: float  # time.monotonic()


def window_of(text: str) -> tuple[int, list[float]]:
    """The media sequence number and the segment durations of a playlist's text."""
    found = _MEDIA_SEQUENCE.search(text)
    first = int(found.group(1)) if found else 0
    return first, [float(value) for value in _EXTINF.findall(text)]


def ffmpeg_command(
    playlist: Path,
    *,
    list_size: int,
    start_number: int,
    program_date_time: bool,
    append: bool,
    size: str = "160x120",
    frequency: int = 440,
) -> list[str]:
    """The ffmpeg command of one encoder: real time, 1 s segments (a key frame every second),
    a sliding window of ``list_size`` with ``delete_segments``, written atomically."""
    flags = ["delete_segments", "omit_endlist", "temp_file"]
    flags += ["program_date_time"] if program_date_time else []
    flags += ["append_list"] if append else []
    sources = [
        *("-re", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={FPS}"),
        *("-re", "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=44100"),
    ]
    video = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"]
    video += ["-pix_fmt", "yuv420p", "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0"]
    audio = ["-c:a", "aac", "-b:a", "32k"]
    hls = ["-f", "hls", "-hls_time", "1", "-hls_list_size", str(list_size)]
    hls += ["-hls_flags", "+".join(flags)]
    # append_list numbers on from the playlist it reads; a -start_number beside it would
    # renumber the segments already listed (ffmpeg 5.1), so it is given only to a new playlist.
    hls += [] if append else ["-start_number", str(start_number)]
    hls += ["-hls_segment_filename", str(playlist.parent / "seg%d.ts")]
    head = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    return [*head, *sources, "-t", str(MAX_ENCODER_S), *video, *audio, *hls, str(playlist)]


@dataclass(eq=False)
class HlsStream:
    """The encoder and its loopback server (``start()`` both; ``close()`` both)."""

    root: Path
    list_size: int = 6
    program_date_time: bool = True
    mode: Mode = Mode.LIVE
    fail_status: int = 500
    requests: list[LoggedRequest] = field(default_factory=list)
    produced: dict[int, float] = field(default_factory=dict)
    port: int = 0
    encoders: int = 0  # how many ffmpeg processes were started
    _stale: str = ""
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _process: asyncio.subprocess.Process | None = None
    _runner: web.AppRunner | None = None
    _watcher: asyncio.Task[None] | None = None

    @property
    def playlist(self) -> Path:
        """The playlist file ffmpeg writes."""
        return self.root / PLAYLIST

    @property
    def url(self) -> str:
        """The playlist's URL."""
        return f"http://127.0.0.1:{self.port}/{PLAYLIST}"

    @property
    def master_url(self) -> str:
        """A master playlist's URL: the live playlist (160x120) and a missing smaller variant."""
        return f"http://127.0.0.1:{self.port}/{MASTER}"

    def count(self, path: str) -> int:
        """How many requests asked for ``path`` (``/live.m3u8``, ``/seg3.ts``)."""
        return sum(1 for entry in self.requests if entry.path == path)

    @property
    def produced_s(self) -> float:
        """The media the encoders listed so far, in seconds (what the stream put on air)."""
        return sum(self.produced.values())

    @property
    def next_sequence(self) -> int:
        """The sequence number of the next segment the stream will list."""
        return max(self.produced, default=-1) + 1

    async def start(self) -> HlsStream:
        """Serve on a free 127.0.0.1 port and start the encoder at sequence 0; returns once the
        playlist lists a segment."""
        if shutil.which("ffmpeg") is None:
            raise RuntimeError("ffmpeg is not installed (scripts/test installs it with apt-get)")
        self.root.mkdir(parents=True, exist_ok=True)
        await self._serve()
        self._watcher = asyncio.create_task(self._watch())
        await self._encode(start_number=0, append=False)
        return self

    async def close(self) -> None:
        """Kill the encoder, stop the watcher and the server (idempotent)."""
        await self._kill()
        self._released.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- the controls ----------------------------------------------------------------------

    def stall(self) -> None:
        """Serve the playlist as it is now, without updates, until ``resume()``."""
        self._stale = self.playlist.read_text()
        self.mode = Mode.STALLED

    def go_missing(self) -> None:
        """Answer 404 for the playlist until ``resume()``."""
        self.mode = Mode.MISSING

    def fail(self, status: int = 500) -> None:
        """Answer ``status`` for the playlist until ``resume()``."""
        self.fail_status = status
        self.mode = Mode.FAILING

    def hang(self) -> None:
        """Leave every playlist request unanswered until ``resume()``."""
        self._released.clear()
        self.mode = Mode.HUNG

    def reset(self) -> None:
        """Close each playlist request's connection without an answer until ``resume()``."""
        self.mode = Mode.RESET

    def resume(self) -> None:
        """Serve the live playlist again."""
        self.mode = Mode.LIVE
        self._released.set()

    async def restart(self, *, keep_window: bool = True) -> None:
        """Kill the encoder and start a new one that continues the media sequence; returns once
        it listed its first segment.

        ``keep_window``: the new encoder appends to the playlist (the old segments stay in the
        window, ``#EXT-X-DISCONTINUITY`` before the new ones); otherwise it writes a playlist
        of its own from ``-start_number`` on, without a discontinuity tag (its timestamps start
        again all the same, as some origins do it)."""
        await self._kill()
        await self._encode(start_number=self._next_on_disk(), append=keep_window)

    async def off_air(self) -> None:
        """Kill the encoder; the playlist stays as it last was."""
        await self._kill()

    async def end(self) -> None:
        """Kill the encoder and end the playlist with ``#EXT-X-ENDLIST``."""
        await self._kill()
        self._record(self.playlist.read_text())
        with self.playlist.open("a") as playlist:
            playlist.write("#EXT-X-ENDLIST\n")

    async def wait_for_segments(self, count: int, timeout_s: float = 30.0) -> None:
        """Return once the stream has listed ``count`` more segments than now."""
        goal = self.next_sequence + count
        deadline = time.monotonic() + timeout_s
        while self.next_sequence < goal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stream listed no segment {goal - 1} in {timeout_s} s")
            await asyncio.sleep(WATCH_INTERVAL_S)

    # --- the encoder -----------------------------------------------------------------------

    async def _encode(self, *, start_number: int, append: bool) -> None:
        command = ffmpeg_command(
            self.playlist,
            list_size=self.list_size,
            start_number=start_number,
            program_date_time=self.program_date_time,
            append=append,
        )
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.encoders += 1
        await self._wait_for_sequence(start_number)

    async def _wait_for_sequence(self, sequence: int) -> None:
        deadline = time.monotonic() + FIRST_SEGMENT_TIMEOUT_S
        while sequence not in self.produced:
            if self._process is not None and self._process.returncode is not None:
                raise RuntimeError(f"ffmpeg exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ffmpeg listed no segment {sequence}")
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await process.wait()

    def _next_on_disk(self) -> int:
        first, durations = window_of(self.playlist.read_text())
        return first + len(durations)

    async def _watch(self) -> None:
        """Note every segment the playlist on disk lists, as ffmpeg rewrites it."""
        while True:
            with contextlib.suppress(FileNotFoundError):
                self._record(self.playlist.read_text())
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _record(self, text: str) -> None:
        first, durations = window_of(text)
        for offset, duration in enumerate(durations):
            self.produced.setdefault(first + offset, duration)

    # --- the server ------------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get(f"/{PLAYLIST}", self._playlist)
        app.router.add_get(f"/{MASTER}", self._master)
        app.router.add_get("/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _playlist(self, request: web.Request) -> web.StreamResponse:
        if self.mode is Mode.HUNG:
            await self._released.wait()
        if self.mode is Mode.RESET and request.transport is not None:
            self._log(request, 0)
            request.transport.abort()
            return web.Response(status=500)
        if self.mode is Mode.MISSING:
            return self._answer(request, web.Response(status=404, text="no such stream"))
        if self.mode is Mode.FAILING:
            return self._answer(request, web.Response(status=self.fail_status, text="down"))
        text = self._stale if self.mode is Mode.STALLED else self.playlist.read_text()
        response = web.Response(text=text, content_type=CONTENT_TYPES[".m3u8"])
        response.headers["Cache-Control"] = "no-cache"
        return self._answer(request, response)

    async def _master(self, request: web.Request) -> web.StreamResponse:
        # Two variants: the live one, and a smaller one that does not exist (a test that
        # follows the wrong one finds out at once).
        text = "\n".join(
            [
                "#EXTM3U",
                '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=160x120,CODECS="avc1.42c00c,mp4a.40.2"',
                PLAYLIST,
                "#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=80x60",
                "small/live.m3u8",
                "",
            ]
        )
        return self._answer(request, web.Response(text=text, content_type=CONTENT_TYPES[".m3u8"]))

    async def _file(self, request: web.Request) -> web.StreamResponse:
        path = self.root / request.match_info["name"]
        if path.suffix != ".ts" or not path.is_file():
            return self._answer(request, web.Response(status=404, text="gone"))
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted by ffmpeg between the check and the read
            return self._answer(request, web.Response(status=404, text="gone"))
        return self._answer(request, web.Response(body=data, content_type="video/mp2t"))

    def _answer(self, request: web.Request, response: web.Response) -> web.Response:
        self._log(request, response.status)
        return response

    def _log(self, request: web.Request, status: int) -> None:
        self.requests.append(LoggedRequest(request.path, status, time.monotonic()))


@contextlib.asynccontextmanager
async def hls_stream(
    root: Path, *, list_size: int = 6, program_date_time: bool = True
) -> AsyncIterator[HlsStream]:
    """A started ``HlsStream`` in ``root``, closed on exit."""
    stream = HlsStream(root, list_size=list_size, program_date_time=program_date_time)
    try:
        yield await stream.start()
    finally:
        await stream.close()
