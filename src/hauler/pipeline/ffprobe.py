"""What ffprobe reads of a media file: its stream types and duration (ffprobe as a process)."""

from __future__ import annotations

import asyncio
import json
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path

from hauler.errors import BadMedia, LocalError

# A probe reads the container's header (and, at worst, scans it): seconds even for hours of
# video. Past this something is wrong with the file or the machine.
PROBE_TIMEOUT_S = 120.0
# ffprobe processes at once per event loop: twenty recordings stopped together would start
# twenty (~15 MiB each) at the same instant; a few at a time keep the peak flat.
MAX_PROBES = 4
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """The stream types (``video``, ``audio``, ``subtitle``…) and duration ffprobe found."""

    streams: frozenset[str]
    duration_s: float | None


async def probe(path: Path) -> MediaInfo:
    """Read ``path`` with ffprobe; ``BadMedia`` when it cannot, ``LocalError`` when
    ffprobe is not installed."""
    binary = shutil.which("ffprobe")
    if binary is None:
        raise LocalError("ffprobe is not installed: install ffmpeg (apt-get install ffmpeg)")
    async with _slot():
        return await _run(binary, path)


def _slot() -> asyncio.Semaphore:
    """This event loop's probe slots (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(MAX_PROBES)
    return slots


async def _run(binary: str, path: Path) -> MediaInfo:
    process = await asyncio.create_subprocess_exec(
        binary,
        *("-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "json"),
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BadMedia(f"{path.name}: ffprobe did not finish reading it") from None
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["no reason given"]
        raise BadMedia(f"{path.name}: ffprobe cannot read it ({reason[0]})")
    return parse(out)


def parse(output: bytes) -> MediaInfo:
    """The ``MediaInfo`` in ffprobe's ``-of json`` output."""
    data = json.loads(output or b"{}")
    streams = frozenset(
        str(stream["codec_type"]) for stream in data.get("streams", []) if "codec_type" in stream
    )
    raw = data.get("format", {}).get("duration")
    try:
        duration = float(raw) if raw is not None else None
    except ValueError:
        duration = None
    return MediaInfo(streams, duration)
