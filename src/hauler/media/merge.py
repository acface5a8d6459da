"""Video and audio downloaded as separate formats, merged into one file by ffmpeg, and an HLS
download (MPEG-TS) remuxed into the container its name promises: stream copy (no re-encode),
every stream of every input, in the container the output's extension names."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

from hauler.errors import BadMedia, LocalError

# Copying streams costs about the time to read and write the file once: minutes at worst.
MERGE_TIMEOUT_S = 1800.0
MP4_FAMILY = frozenset({".mp4", ".m4a", ".m4v", ".mov"})


async def merge(inputs: Sequence[Path], output: Path) -> int:
    """Merge ``inputs`` into ``output`` (replaced if there); its size. ``BadMedia`` when
    ffmpeg fails (the inputs are kept), ``LocalError`` when ffmpeg is not installed."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise LocalError("ffmpeg is not installed: install it (apt-get install ffmpeg)")
    args = ["-nostdin", "-y", "-loglevel", "error"]
    for path in inputs:
        args += ["-i", str(path)]
    for index in range(len(inputs)):
        args += ["-map", f"{index}"]
    args += ["-c", "copy"]
    if output.suffix.lower() in MP4_FAMILY:
        # AAC from MPEG-TS (HLS) carries ADTS headers, which MP4 must not: what yt-dlp's own
        # fixup does; AAC without them passes through unchanged.
        args += ["-bsf:a", "aac_adtstoasc"]
    args.append(str(output))
    process = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(MERGE_TIMEOUT_S):
            _, err = await process.communicate()
    except BaseException:
        # Cancelled or too slow: no ffmpeg is left writing after us.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        reason = (err.decode(errors="replace").strip().splitlines() or ["no reason given"])[-1]
        raise BadMedia(f"ffmpeg could not merge into {output.name}: {reason}")
    return output.stat().st_size
