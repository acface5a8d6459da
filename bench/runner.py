"""One measured tool run: a subprocess timed with perf_counter, its CPU and peak RSS from wait4.

wait4's rusage covers the process and every descendant it reaped (xargs -> wget), so CPU is the
whole tree's; ru_maxrss is the largest single process of that tree, not a sum.

Peak RSS goes through GNU time (its own wait4): on Linux a child forked from this Python process
keeps the parent's RSS high-water mark across exec, so our own ru_maxrss would never read lower
than the harness itself (~50 MiB). GNU time is small, so its child's figure is the tool's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corpus import CorpusFile

HASH_CHUNK_BYTES = 4 << 20
OUTPUT_TAIL_LINES = 3
GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run of one tool cost and whether its files were right (``error`` is None)."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    exit_code: int
    error: str | None

    @property
    def is_ok(self) -> bool:
        """The tool exited 0 in time and every file matched the origin's sha256."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Command:
    """A tool invocation: argv, extra environment, and an optional file fed to stdin."""

    argv: list[str]
    env: Mapping[str, str]
    stdin_path: Path | None = None


def run_once(cmd: Command, cwd: Path, log_path: Path, timeout_s: float) -> RunOutcome:
    """Run ``cmd`` in ``cwd``, output to ``log_path``; kill its group after ``timeout_s``."""
    env = {**os.environ, **cmd.env}
    rss_path = log_path.with_suffix(".rss")
    argv = [*_rss_probe(rss_path), *cmd.argv]
    with log_path.open("wb") as log, (cmd.stdin_path or Path(os.devnull)).open("rb") as stdin:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=stdin, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        timed_out = threading.Event()
        watchdog = threading.Timer(timeout_s, _kill_group, (proc.pid, timed_out))
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall_s = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # stops Popen from reaping it again
    error = _exit_error(proc.returncode, timed_out.is_set(), timeout_s, log_path)
    return RunOutcome(
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=_peak_rss_kib(rss_path, usage.ru_maxrss) / 1024,
        exit_code=proc.returncode,
        error=error,
    )


def verify(outcome: RunOutcome, expected: Mapping[Path, CorpusFile]) -> RunOutcome:
    """``outcome`` with ``error`` set when a file is missing or its sha256 differs."""
    if not outcome.is_ok:
        return outcome
    for path, want in expected.items():
        problem = _file_problem(path, want)
        if problem is not None:
            bad = sum(_file_problem(p, w) is not None for p, w in expected.items())
            msg = f"{bad}/{len(expected)} file(s) wrong, first: {problem}"
            return RunOutcome(outcome.wall_s, outcome.cpu_s, outcome.peak_rss_mib, 0, msg)
    return outcome


def _file_problem(path: Path, want: CorpusFile) -> str | None:
    if not path.is_file():
        return f"{path.name} missing"
    if path.stat().st_size != want.size:
        return f"{path.name} has {path.stat().st_size} bytes, want {want.size}"
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(HASH_CHUNK_BYTES):
            digest.update(block)
    if digest.hexdigest() != want.sha256:
        return f"{path.name} sha256 differs from the origin's"
    return None


def _rss_probe(rss_path: Path) -> list[str]:
    if not GNU_TIME.exists():
        return []
    return [str(GNU_TIME), "--quiet", "-f", "%M", "-o", str(rss_path), "--"]


def _peak_rss_kib(rss_path: Path, fallback_kib: int) -> int:
    """GNU time's %M (KiB); our own ru_maxrss (KiB, inflated) when time did not report."""
    lines = rss_path.read_text().split() if rss_path.is_file() else []
    return int(lines[-1]) if lines and lines[-1].isdigit() else fallback_kib


def _kill_group(pid: int, timed_out: threading.Event) -> None:
    timed_out.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the group we created with start_new_session


def _exit_error(code: int, timed_out: bool, timeout_s: float, log_path: Path) -> str | None:
    if timed_out:
        return f"timed out after {timeout_s:.0f}s"
    if code != 0:
        lines = log_path.read_text(errors="replace").strip().splitlines()
        return f"exit {code}: " + " / ".join(lines[-OUTPUT_TAIL_LINES:])
    return None
