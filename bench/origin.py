"""The origin: Debian's nginx run in the foreground from a generated config, on loopback only.

Two ports serve the same corpus: one uncapped, one with ``limit_rate`` per connection and a small
send buffer so that the cap holds (see nginx.conf.template).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

HOST = "127.0.0.1"
TEMPLATE = Path(__file__).with_name("nginx.conf.template")
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class OriginError(RuntimeError):
    """nginx is missing, would not start, or died."""


@dataclass(frozen=True, slots=True)
class OriginConfig:
    """How to run the origin: corpus root, per-connection cap, send buffer, worker count."""

    root: Path
    cap_bps: int
    sndbuf_bytes: int = 64 * 1024
    workers: int = 1


@dataclass(frozen=True, slots=True)
class Origin:
    """A running origin: base URLs of its two ports and its pid."""

    uncapped_base: str
    capped_base: str
    pid: int
    config_path: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def render_config(cfg: OriginConfig, tmp: Path, ports: tuple[int, int]) -> str:
    """nginx.conf for ``cfg`` with all state under ``tmp``; ``ports`` are (uncapped, capped)."""
    # nginx run by root drops its workers to "nobody", who may not read the corpus or tmp.
    user_line = "user root;" if os.geteuid() == 0 else ""
    return Template(TEMPLATE.read_text()).substitute(
        workers=cfg.workers,
        tmp=tmp,
        user_line=user_line,
        port_uncapped=ports[0],
        port_capped=ports[1],
        root=cfg.root.resolve(),
        sndbuf=cfg.sndbuf_bytes,
        cap_bps=cfg.cap_bps,
    )


@contextmanager
def running(cfg: OriginConfig, tmp: Path) -> Iterator[Origin]:
    """Start nginx in the foreground with its config, pid and logs in ``tmp``; stop it on exit."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise OriginError("nginx not found: apt-get install nginx-light (or nginx)")
    ports = (free_port(), free_port())
    conf = tmp / "nginx.conf"
    conf.write_text(render_config(cfg, tmp, ports))
    log = (tmp / "nginx.stderr").open("wb")
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        _wait_ready(proc, ports, tmp)
        yield Origin(f"http://{HOST}:{ports[0]}", f"http://{HOST}:{ports[1]}", proc.pid, conf)
    finally:
        _stop(proc)
        log.close()


def _wait_ready(proc: subprocess.Popen[bytes], ports: tuple[int, int], tmp: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise OriginError(f"nginx exited with {proc.returncode}: {_log_tail(tmp)}")
        if all(_accepts(port) for port in ports):
            return
        time.sleep(0.05)
    raise OriginError(f"nginx did not listen within {READY_TIMEOUT_S}s: {_log_tail(tmp)}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # fast shutdown of the master and its workers
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)


def _log_tail(tmp: Path) -> str:
    texts = []
    for name in ("nginx.stderr", "error.log"):
        path = tmp / name
        if path.is_file():
            texts.append(path.read_text(errors="replace")[-2000:])
    return " | ".join(t.strip() for t in texts if t.strip()) or "(no log)"


def measured_rate_bps(url: str, timeout_s: float) -> float:
    """Download ``url`` once with curl over one connection; its average rate in bytes/s."""
    argv = ["curl", "-q", "-sS", "-f", "-o", os.devnull, "-w", "%{speed_download}", url]
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise OriginError(f"cap check timed out after {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        raise OriginError(f"cap check failed: curl exit {done.returncode}: {done.stderr}")
    return float(done.stdout.strip())
