"""An HTTP-FLV live source: ffmpeg itself serves ``testsrc`` + ``sine`` in real time as FLV
(``-f flv -listen 1 http://127.0.0.1:PORT/live.flv``), to one client, as a streaming room's
HTTP-FLV URL does.

ffmpeg's HTTP server takes one client: when that client goes away ffmpeg exits, as a room's
stream ends for a recorder that dropped. ``restart()`` starts a new one on the same port (a
reconnect finds the stream again). Readiness is read from ``/proc/net/tcp`` (a listening
socket), never by connecting: a probe connection would be the one client ffmpeg serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.live.stream import FPS, MAX_ENCODER_S

LISTEN_TIMEOUT_S = 10.0
_TCP_LISTEN = "0A"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_listening(port: int, tables: tuple[Path, ...] = (Path("/proc/net/tcp"),)) -> bool:
    """True when a socket listens on 127.0.0.1:``port`` (read from the kernel's table)."""
    wanted = f"0100007F:{port:04X}"
    for table in tables:
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == _TCP_LISTEN:
                return True
    return False


@dataclass(eq=False)
class FlvSource:
    """ffmpeg serving one HTTP-FLV stream on a free loopback port."""

    port: int = 0
    starts: int = 0
    _process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """The stream's URL."""
        return f"http://127.0.0.1:{self.port}/live.flv"

    @property
    def is_running(self) -> bool:
        """True while the ffmpeg serving the stream is alive."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> FlvSource:
        """Start ffmpeg; returns once it listens."""
        self.port = self.port or free_port()
        command = [
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"),
            *("-re", "-f", "lavfi", "-i", f"testsrc=size=160x120:rate={FPS}"),
            *("-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"),
            *("-t", str(MAX_ENCODER_S)),
            *("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"),
            *("-pix_fmt", "yuv420p", "-g", str(FPS), "-c:a", "aac", "-b:a", "32k"),
            *("-f", "flv", "-listen", "1", self.url),
        ]
        self._process = await self._spawn(command)
        self.starts += 1
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while not is_listening(self.port):
            if time.monotonic() > deadline:
                await self.close()
                raise RuntimeError(f"ffmpeg does not listen on {self.url}")
            if not self.is_running:
                # The port was not free again yet (a restart right after the old ffmpeg's
                # exit): start once more on the same port until the deadline.
                await asyncio.sleep(0.2)
                self._process = await self._spawn(command)
            await asyncio.sleep(0.05)
        return self

    @staticmethod
    async def _spawn(command: list[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def restart(self) -> None:
        """Kill ffmpeg (if it still runs) and serve the stream again on the same port."""
        await self.close()
        await self.start()

    async def close(self) -> None:
        """Kill ffmpeg (idempotent)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def flv_source() -> AsyncIterator[FlvSource]:
    """A started ``FlvSource``, killed on exit."""
    source = FlvSource()
    try:
        yield await source.start()
    finally:
        await source.close()
