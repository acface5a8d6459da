"""A fault-injecting HTTP/1.1 origin on 127.0.0.1 for engine tests, subprocess tests and benches.

Content is a pure function of (file name, version, offset): 64 KiB blocks of SHAKE-128 output, so
any misplaced or duplicated write shows in the file's sha256. The server is raw asyncio (not
aiohttp.web) so that it can lie: wrong Content-Length, resets, stalls, ignored Range.

Faults are chosen per request index per file (1-based): ``origin.add("f", size, faults={3:
Fault(reset_after=100 * 1024)})`` makes the 3rd request on ``f`` reset after 100 KiB.

Standalone: ``python -m tests.transfer.origin --port 0 --file big.bin=8M [--rate 1M]`` prints
``PORT <n>`` on stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import math
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import quote, unquote

BLOCK_BYTES = 64 * 1024
_REASONS = {
    200: "OK",
    206: "Partial Content",
    301: "Moved Permanently",
    302: "Found",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    410: "Gone",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@functools.lru_cache(maxsize=512)
def _block(name: str, version: int, index: int) -> bytes:
    return hashlib.shake_128(f"{name}:{version}:{index}".encode()).digest(BLOCK_BYTES)


def content(name: str, version: int, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of version ``version`` of file ``name``."""
    parts = []
    pos = start
    while pos < end:
        index, offset = divmod(pos, BLOCK_BYTES)
        take = min(BLOCK_BYTES - offset, end - pos)
        parts.append(_block(name, version, index)[offset : offset + take])
        pos += take
    return b"".join(parts)


def content_sha256(name: str, size: int, version: int = 1) -> str:
    """The sha256 of the whole file, computed without a server (for subprocess tests)."""
    digest = hashlib.sha256()
    for start in range(0, size, 1024 * 1024):
        digest.update(content(name, version, start, min(size, start + 1024 * 1024)))
    return digest.hexdigest()


@dataclass
class Fault:
    """What goes wrong on one request. Fields combine; unset ones do nothing."""

    status: int | None = None  # answer this status with a short body instead of the file
    retry_after: str | None = None  # Retry-After header value (seconds or HTTP-date)
    reset_after: int | None = None  # body bytes sent before an abortive close (RST)
    close_after: int | None = None  # body bytes sent before a clean close (short body)
    stall_after: int | None = None  # body bytes sent before going silent
    stall_s: float = 3600.0  # how long the silence lasts (then the body continues)
    ignore_range: bool = False  # answer 200 with the whole file
    length_delta: int = 0  # added to the declared Content-Length (a lie)
    rate_bps: int | None = None  # per-connection cap for this response
    bump_version: bool = False  # the file changes (new ETag) before this request is served
    extra_bytes: int = 0  # bytes sent after the declared body, on a connection kept alive


@dataclass
class RemoteFile:
    """One file the origin serves and how it behaves."""

    name: str
    size: int
    version: int = 1
    has_etag: bool = True
    has_last_modified: bool = True
    accepts_ranges: bool = True
    chunked: bool = False  # no Content-Length, Transfer-Encoding: chunked, no Range
    disposition: str | None = None  # raw Content-Disposition header value
    content_type: str = "application/octet-stream"
    rate_bps: int | None = None  # per-connection cap on every response
    close_delimited: bool = False  # no Content-Length, no chunks: the body ends at the close
    trickle_s: float | None = None  # send the body one byte every this many seconds
    faults: dict[int, Fault] = field(default_factory=dict)
    requests: int = 0

    @property
    def etag(self) -> str:
        digest = hashlib.sha1(self.name.encode()).hexdigest()[:12]
        return f'"{digest}-v{self.version}"'

    @property
    def last_modified(self) -> str:
        return formatdate(1_600_000_000 + self.version * 3600, usegmt=True)

    def body(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the current version."""
        return content(self.name, self.version, start, end)

    def sha256(self) -> str:
        """The sha256 of the current version."""
        return content_sha256(self.name, self.size, self.version)


@dataclass
class LoggedRequest:
    """One request as the origin saw it, and what it answered."""

    name: str
    index: int
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    bytes_sent: int = 0
    peer_port: int = 0  # the client's port: requests sharing it shared a kept-alive connection

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def if_range(self) -> str | None:
        return self.headers.get("if-range")


class _Abort(Exception):
    """End this connection now."""


class Origin:
    """The server. ``await start()``, ``add(...)`` files, ``url(name)``, ``await close()``."""

    def __init__(self) -> None:
        self.files: dict[str, RemoteFile] = {}
        self.log: list[LoggedRequest] = []
        self.redirects: dict[str, tuple[int, str]] = {}  # see redirect_to
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._is_closing = False
        # When each file answer began and ended being sent (the loop's clock).
        self.answer_spans: list[tuple[float, float]] = []

    async def start(self, port: int = 0) -> Origin:
        """Listen on 127.0.0.1:``port`` (0: a free port)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        self._is_closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, name: str, size: int, **options: object) -> RemoteFile:
        """Serve a file of ``size`` bytes at ``url(name)``; options are ``RemoteFile`` fields."""
        remote = RemoteFile(name, size, **options)  # type: ignore[arg-type]
        self.files[name] = remote
        return remote

    def url(self, name: str, redirects: int = 0) -> str:
        """The URL of ``name``, optionally behind a chain of ``redirects`` 302s."""
        if redirects:
            return f"{self.base_url}/redirect/{redirects}/{quote(name)}"
        return f"{self.base_url}/files/{quote(name)}"

    def redirect_to(self, name: str, location: str, status: int = 302) -> str:
        """A URL answered by a ``status`` redirect to ``location`` (sent as is: any text)."""
        self.redirects[name] = (status, location)
        return f"{self.base_url}/to/{quote(name)}"

    def sha256(self, name: str) -> str:
        """The sha256 of the current version of ``name``."""
        return self.files[name].sha256()

    def most_at_once(self, tail_s: float = 0.0) -> int:
        """The most file answers sent at once, each taken to end ``tail_s`` early (what the
        server sends after the client let the connection go: the last slice, a drain)."""
        edges = []
        for began, ended in self.answer_spans:
            if ended - tail_s > began:
                edges += [(began, 1), (ended - tail_s, -1)]
        at_once = most = 0
        for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
            at_once += step
            most = max(most, at_once)
        return most

    def requests_for(self, name: str) -> list[LoggedRequest]:
        """The logged requests on ``name``, in arrival order."""
        return [entry for entry in self.log if entry.name == name]

    def bytes_sent(self, name: str) -> int:
        """Body bytes sent for ``name`` over all requests."""
        return sum(entry.bytes_sent for entry in self.requests_for(name))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (_Abort, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            _abort(writer)
            if not self._is_closing:
                raise
            # Our own shutdown cancelled this handler: end quietly (asyncio would log it).
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if target.startswith("http://"):
            # Absolute form: we are being used as an HTTP proxy (for ourselves).
            target = "/" + target.removeprefix("http://").partition("/")[2]
        path = target.split("?", 1)[0]
        if path.startswith("/redirect/"):
            return await self._redirect(writer, path, headers)
        if path.startswith("/to/"):
            return await self._redirect_to(writer, path, headers)
        name = unquote(path.removeprefix("/files/"))
        remote = self.files.get(name)
        remote_requests = 0 if remote is None else remote.requests + 1
        entry = LoggedRequest(name, remote_requests, method, path, headers)
        entry.peer_port = writer.get_extra_info("peername")[1]
        self.log.append(entry)
        if remote is None:
            await _send_status(writer, entry, 404, {})
            return _keep_alive(headers)
        remote.requests += 1
        fault = remote.faults.get(remote.requests, Fault())
        if fault.bump_version:
            remote.version += 1
        began = asyncio.get_running_loop().time()
        try:
            await _respond(writer, entry, remote, fault)
        finally:
            self.answer_spans.append((began, asyncio.get_running_loop().time()))
        return _keep_alive(headers)

    async def _redirect(
        self, writer: asyncio.StreamWriter, path: str, headers: dict[str, str]
    ) -> bool:
        _, _, hops, name = path.split("/", 3)
        left = int(hops) - 1
        location = f"/redirect/{left}/{name}" if left > 0 else f"/files/{name}"
        entry = LoggedRequest(unquote(name), 0, "GET", path, headers)
        self.log.append(entry)
        await _send_status(writer, entry, 302, {"Location": location})
        return _keep_alive(headers)

    async def _redirect_to(
        self, writer: asyncio.StreamWriter, path: str, headers: dict[str, str]
    ) -> bool:
        name = unquote(path.removeprefix("/to/"))
        entry = LoggedRequest(name, 0, "GET", path, headers)
        self.log.append(entry)
        status, location = self.redirects.get(name, (404, ""))
        await _send_status(writer, entry, status, {"Location": location} if location else {})
        return _keep_alive(headers)


def _keep_alive(headers: Mapping[str, str]) -> bool:
    return headers.get("connection", "").lower() != "close"


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), like a crashed or reset peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _send_status(
    writer: asyncio.StreamWriter, entry: LoggedRequest, status: int, extra: Mapping[str, str]
) -> None:
    body = f"{status} {_REASONS.get(status, 'Status')}\n".encode()
    headers = {"Content-Length": str(len(body)), "Content-Type": "text/plain", **extra}
    entry.status = status
    writer.write(_head(status, headers) + (b"" if entry.method == "HEAD" else body))
    await writer.drain()


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _wanted_range(remote: RemoteFile, fault: Fault, headers: Mapping[str, str]) -> str | None:
    """The Range header to honour, or None to answer 200 with the whole file."""
    wanted = headers.get("range")
    is_unknown_length = remote.chunked or remote.close_delimited
    if wanted is None or fault.ignore_range or not remote.accepts_ranges or is_unknown_length:
        return None
    if_range = headers.get("if-range")
    if if_range is not None and if_range not in (remote.etag, remote.last_modified):
        return None
    return wanted


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` as ``[start, end)``; None if unsatisfiable."""
    first, _, last = spec.removeprefix("bytes=").split(",")[0].strip().partition("-")
    if not first:
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    return (start, end) if start < end else None


async def _respond(
    writer: asyncio.StreamWriter, entry: LoggedRequest, remote: RemoteFile, fault: Fault
) -> None:
    if fault.status is not None:
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        await _send_status(writer, entry, fault.status, extra)
        return
    headers: dict[str, str] = {"Content-Type": remote.content_type}
    if remote.has_etag:
        headers["ETag"] = remote.etag
    if remote.has_last_modified:
        headers["Last-Modified"] = remote.last_modified
    is_unknown_length = remote.chunked or remote.close_delimited
    if remote.accepts_ranges and not is_unknown_length:
        headers["Accept-Ranges"] = "bytes"
    if remote.disposition is not None:
        headers["Content-Disposition"] = remote.disposition
    start, end, status = 0, remote.size, 200
    wanted = _wanted_range(remote, fault, entry.headers)
    if wanted is not None:
        span = _parse_range(wanted, remote.size)
        if span is None:
            headers["Content-Range"] = f"bytes */{remote.size}"
            await _send_status(writer, entry, 416, headers)
            return
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{remote.size}"
    if remote.chunked:
        headers["Transfer-Encoding"] = "chunked"
    elif remote.close_delimited:
        headers["Connection"] = "close"
    else:
        headers["Content-Length"] = str(end - start + fault.length_delta)
    entry.status = status
    writer.write(_head(status, headers))
    if entry.method != "HEAD":
        await _send_body(writer, entry, remote, fault, (start, end))
        if fault.extra_bytes:
            # Bytes past the declared body (a broken server): what follows is not a response.
            writer.write(remote.body(end, end + fault.extra_bytes))
            entry.bytes_sent += fault.extra_bytes
    await writer.drain()
    if remote.close_delimited:
        writer.close()
        raise _Abort
    if fault.length_delta:
        # The declared length was a lie: this connection cannot carry another response.
        writer.close()
        raise _Abort


async def _send_body(
    writer: asyncio.StreamWriter,
    entry: LoggedRequest,
    remote: RemoteFile,
    fault: Fault,
    span: tuple[int, int],
) -> None:
    start, end = span
    rate = fault.rate_bps or remote.rate_bps
    slice_bytes = BLOCK_BYTES if rate is None else max(1024, min(BLOCK_BYTES, rate // 20))
    if remote.trickle_s is not None:
        slice_bytes, rate = 1, None
    pos = start
    loop = asyncio.get_running_loop()
    began = loop.time()
    while pos < end:
        take = min(slice_bytes, end - pos)
        sent = entry.bytes_sent
        for limit, action in (
            (fault.reset_after, "reset"),
            (fault.close_after, "close"),
            (fault.stall_after, "stall"),
        ):
            if limit is not None and sent <= limit < sent + take:
                take = limit - sent
                if take == 0:
                    await _fault_action(writer, action, fault)
                    fault = _without(fault, action)
                    take = min(slice_bytes, end - pos)
        chunk = remote.body(pos, pos + take)
        writer.write(_chunk(chunk) if remote.chunked else chunk)
        await writer.drain()
        pos += take
        entry.bytes_sent += take
        if rate is not None:
            ahead_s = (pos - start) / rate - (loop.time() - began)
            if ahead_s > 0:
                await asyncio.sleep(ahead_s)
        elif remote.trickle_s is not None:
            await asyncio.sleep(remote.trickle_s)
    for limit, action in ((fault.reset_after, "reset"), (fault.close_after, "close")):
        if limit is not None and entry.bytes_sent >= limit:
            await _fault_action(writer, action, fault)
    if remote.chunked:
        writer.write(b"0\r\n\r\n")


def _without(fault: Fault, action: str) -> Fault:
    """The fault minus a stall that has been served (resets and closes end the connection)."""
    if action != "stall":
        return fault
    return Fault(**{**fault.__dict__, "stall_after": None})


async def _fault_action(writer: asyncio.StreamWriter, action: str, fault: Fault) -> None:
    await writer.drain()
    if action == "reset":
        _abort(writer)
        raise _Abort
    if action == "close":
        writer.close()
        raise _Abort
    await asyncio.sleep(fault.stall_s)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _parse_file(text: str) -> tuple[str, int]:
    name, _, size = text.partition("=")
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    multiplier = units.get(size[-1:].upper(), 1)
    digits = size[:-1] if multiplier != 1 else size
    return name, math.floor(float(digits) * multiplier)


async def _main(args: argparse.Namespace) -> None:
    origin = await Origin().start(args.port)
    rate = _parse_file(f"x={args.rate}")[1] if args.rate else None
    for spec in args.file:
        name, size = _parse_file(spec)
        origin.add(name, size, rate_bps=rate)
    print(f"PORT {origin.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await origin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="hauler's fault-injecting test origin")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--file", action="append", default=[], help="NAME=SIZE, e.g. big.bin=8M")
    parser.add_argument("--rate", default=None, help="per-connection cap, bytes/s, e.g. 1M")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))
