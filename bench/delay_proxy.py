"""A proxy on 127.0.0.1 that holds every request for a fixed delay before forwarding it.

This kernel has no netem, so the latency of a distant CDN is added here: each request waits
``--delay-ms`` before it goes to the upstream (nginx, which keeps its per-connection cap), and the
response is streamed back as it arrives. That is one round trip's worth of waiting per request,
which is what a fragment downloader pays per fragment; connection set-up is not delayed. It
splices bytes (asyncio streams, one upstream connection per client connection) rather than
parse HTTP, so that its own CPU stays small beside the tools measured.

    python bench/delay_proxy.py --upstream http://127.0.0.1:PORT --port N --delay-ms 40

``running()`` starts it as a subprocess for the length of a ``with`` block.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
CHUNK_BYTES = 64 * 1024


class ProxyError(RuntimeError):
    """The proxy would not start."""


@contextmanager
def running(upstream: str, delay_s: float, log_path: Path) -> Iterator[str]:
    """The proxy in a subprocess while the block runs; yields its base URL."""
    port = _free_port()
    argv = [sys.executable, __file__, "--upstream", upstream, "--port", str(port)]
    argv += ["--delay-ms", f"{delay_s * 1000:g}"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        try:
            _wait_ready(proc, port)
            yield f"http://{HOST}:{port}"
        finally:
            _stop(proc)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProxyError(f"the delay proxy exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ProxyError(f"the delay proxy did not listen within {READY_TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy the upstream's bytes back to the client as they come, until either side ends."""
    try:
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def handler(
    upstream: tuple[str, int], delay_s: float
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """One client connection, spliced to one upstream connection of its own: each request
    head (a GET's whole request) waits ``delay_s`` before it is sent on; the answers flow
    back untouched (headers, ranges and bodies byte for byte). Clients that do not pipeline
    (none of the benchmarked tools does) see every request take ``delay_s`` longer."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*upstream)
        except OSError:
            client_w.close()
            return
        back = asyncio.create_task(_pipe(up_r, client_w))
        try:
            while True:
                head = await client_r.readuntil(b"\r\n\r\n")
                await asyncio.sleep(delay_s)
                up_w.write(head)
                await up_w.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            up_w.close()
            await asyncio.wait([back], timeout=STOP_TIMEOUT_S)
            client_w.close()

    return handle


async def _serve(upstream: tuple[str, int], port: int, delay_s: float) -> None:
    server = await asyncio.start_server(handler(upstream, delay_s), HOST, port, backlog=1024)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    if not args.upstream.startswith(f"http://{HOST}:"):
        parser.error(f"the upstream must be on http://{HOST}")
    port = int(args.upstream.rstrip("/").rsplit(":", 1)[1])
    asyncio.run(_serve((HOST, port), args.port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
