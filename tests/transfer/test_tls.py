"""TLS: certificates are verified against the system's trusted CAs (loaded at the first
handshake, not at start-up), and nothing falls back to an unverified connection.

The origin serves HTTPS on 127.0.0.1 with a certificate from a throw-away CA (trustme); the CA is
trusted only where a test points ``SSL_CERT_FILE`` at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from tests.cli.process import Completed, HaulerRunner, finish
from tests.transfer.origin import Origin

KIB = 1024


class TlsOrigin(Origin):
    """The fault-injecting origin behind TLS."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    async def start(self, port: int = 0) -> TlsOrigin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(authority: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


@contextlib.asynccontextmanager
async def serving_tls(authority: trustme.CA, name: str) -> AsyncIterator[TlsOrigin]:
    """A TLS origin on 127.0.0.1 whose certificate, issued by ``authority``, names ``name``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(context)
    server = await TlsOrigin(context).start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def tls_origin(authority: trustme.CA) -> AsyncIterator[TlsOrigin]:
    async with serving_tls(authority, "127.0.0.1") as server:
        yield server


@pytest.fixture
async def misnamed_origin(authority: trustme.CA) -> AsyncIterator[TlsOrigin]:
    async with serving_tls(authority, "other.hauler.invalid") as server:
        yield server


class TrustRunner(HaulerRunner):
    """A `hauler` runner that trusts the system's CAs plus only what ``env`` adds."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            if name not in self.env:
                env.pop(name, None)
        return env


def runner(cwd: Path, **env: str) -> HaulerRunner:
    return TrustRunner(cwd=cwd, env=env)


async def test_untrusted_certificate_is_refused(tls_origin: TlsOrigin, tmp_path: Path) -> None:
    tls_origin.add("secret.bin", 64 * KIB)
    done = await runner(tmp_path).run("get", "-d", "out", tls_origin.url("secret.bin"))
    assert done.returncode == 5, done.stdout + done.stderr
    assert "certificate verify failed" in done.stdout + done.stderr
    # Fatal at once: a certificate does not become trusted by retrying.
    assert ": certificate: " in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "secret.bin").exists()
    assert tls_origin.log == [], "no request may be sent over an unverified connection"


async def test_certificate_trusted_through_ssl_cert_file(
    tls_origin: TlsOrigin, ca_file: Path, tmp_path: Path
) -> None:
    remote = tls_origin.add("public.bin", 700 * KIB)
    cli = runner(tmp_path, SSL_CERT_FILE=str(ca_file))
    done = await cli.run("get", "-d", "out", "-x", "4", tls_origin.url("public.bin"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert hashlib.sha256((tmp_path / "out" / "public.bin").read_bytes()).hexdigest() == (
        remote.sha256()
    )


async def test_host_name_is_checked(
    misnamed_origin: TlsOrigin, ca_file: Path, tmp_path: Path
) -> None:
    """A certificate from a trusted CA, but for another host name, is refused."""
    misnamed_origin.add("named.bin", 1 * KIB)
    cli = runner(tmp_path, SSL_CERT_FILE=str(ca_file))
    done = await cli.run("get", "-d", "out", misnamed_origin.url("named.bin"))
    assert done.returncode == 5
    assert "certificate verify failed" in done.stdout + done.stderr
    assert misnamed_origin.log == []


# A fresh interpreter that imports aiohttp the way `hauler get` does (through hauler.net), then
# fetches argv[1] once with hauler's session and once with a plain aiohttp session.
_BOTH_SESSIONS = """
import asyncio, ssl, sys
before = dict(vars(ssl.SSLContext))
import hauler.net
import aiohttp
from hauler.config import TransferSettings

async def fetch(session):
    try:
        async with session.get(sys.argv[1]) as resp:
            return f"{resp.status}"
    except aiohttp.ClientConnectorCertificateError:
        return "certificate refused"

async def main():
    sessions = hauler.net.Sessions(TransferSettings())
    ours = await fetch(sessions.for_proxy(None)[0])
    await sessions.close()
    async with aiohttp.ClientSession() as plain:
        theirs = await fetch(plain)
    assert dict(vars(ssl.SSLContext)) == before, "ssl.SSLContext left patched"
    assert ssl.create_default_context().cert_store_stats()["x509_ca"] == 1
    print(ours, "|", theirs)

asyncio.run(main())
"""


async def test_aiohttp_default_context_fails_closed(
    tls_origin: TlsOrigin, ca_file: Path, tmp_path: Path
) -> None:
    """With the CA trusted, hauler's sessions connect, while anything that would use aiohttp's
    import-time default context (built without CAs) is refused rather than unverified.
    """
    tls_origin.add("x.bin", 1 * KIB)
    env = runner(tmp_path, SSL_CERT_FILE=str(ca_file)).environment()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BOTH_SESSIONS,
        tls_origin.url("x.bin"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    done: Completed = await finish(process)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200 | certificate refused"
