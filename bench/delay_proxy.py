"""A reverse proxy on 127.0.0.1 that holds every request for a fixed delay before forwarding it.

This kernel has no netem, so the latency of a distant CDN is added here: each request waits
``--delay-ms`` before it goes to the upstream (nginx, which keeps its per-connection cap), and the
response is streamed back as it arrives. That is one round trip's worth of waiting per request,
which is what a fragment downloader pays per fragment; connection set-up is not delayed.

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

HOST = "127.0.0.1"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
CHUNK_BYTES = 64 * 1024
# Request headers worth passing on (a downloader's ranges and validators), and response headers
# worth passing back; hop-by-hop ones (Connection, Transfer-Encoding) are aiohttp's business.
REQUEST_HEADERS = ("Range", "If-Range", "If-None-Match", "If-Modified-Since", "User-Agent")
RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
)


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


def make_app(upstream: str, delay_s: float) -> web.Application:
    """The proxy's application: every GET or HEAD waits ``delay_s``, then goes to ``upstream``."""
    app = web.Application()

    async def open_session(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0)  # one upstream connection per request at once
        app["session"] = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay_s)
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k in REQUEST_HEADERS}
        url = upstream + request.path_qs
        async with session.request(request.method, url, headers=headers) as reply:
            response = web.StreamResponse(status=reply.status)
            for name in RESPONSE_HEADERS:
                if name in reply.headers:
                    response.headers[name] = reply.headers[name]
            await response.prepare(request)
            async for chunk in reply.content.iter_chunked(CHUNK_BYTES):
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_get("/{tail:.*}", forward)  # HEAD too
    return app


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    if not args.upstream.startswith(f"http://{HOST}:"):
        parser.error(f"the upstream must be on http://{HOST}")
    app = make_app(args.upstream.rstrip("/"), args.delay_ms / 1000)
    web.run_app(app, host=HOST, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
