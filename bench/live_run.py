"""One live recorder's run: its script started in a session of its own, its tree sampled every
0.5 s, stopped as a user stops it, and what it left measured (ffprobe durations, hauler's --json).

Stopping: the STOP file first (the loops restart no more), then one SIGINT to each recorder
process (a child of one of the script's bash processes: ffmpeg, streamlink, hauler; never their
own children, such as hauler's ffprobe, and never twice: hauler's second Ctrl-C cancels), and
the whole session is killed if it still runs after the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import ffprobe_check
import live_tools
import proc_tree
from live_tools import LiveTool, RunFiles

SAMPLE_INTERVAL_S = 0.5
POLL_S = 0.2
MEDIA_SUFFIXES = {".ts", ".flv", ".mkv", ".mp4"}


@dataclass(slots=True)
class Measured:
    """What one run cost and what it recorded."""

    tool: str
    peak_processes: int = 0
    peak_rss_mib: float = 0.0
    peak_pss_mib: float = 0.0
    # The same peaks while recording, before the stop (hauler probes every part as it closes).
    recording_rss_mib: float = 0.0
    recording_pss_mib: float = 0.0
    cpu_s: float = 0.0
    sampled_cpu_s: float = 0.0  # the last sample's: the fallback when the tree was killed
    recorded_s: float = 0.0  # ffprobe durations of every output, summed
    on_air_s: float = 0.0  # what the streams listed while the tool ran (set by the scenario)
    files: int = 0  # playable outputs
    unreadable: list[str] = field(default_factory=list)  # outputs ffprobe cannot read
    leftovers: list[str] = field(default_factory=list)  # *.part and other non-media files
    gaps: list[dict[str, float]] = field(default_factory=list)  # hauler's --json, every room
    reported_s: float = 0.0  # hauler's own recorded_s, every room
    ends: list[str] = field(default_factory=list)  # hauler's end per room
    killed: bool = False  # still running after the stop grace
    wall_s: float = 0.0
    error: str | None = None


@dataclass(eq=False)
class ToolRun:
    """A started recorder (``start``), sampled until it has exited (``stop`` / ``wait_exit``)."""

    tool: LiveTool
    urls: list[str]
    files: RunFiles
    measured: Measured = field(init=False)
    _proc: subprocess.Popen[bytes] | None = None
    _sampler: asyncio.Task[None] | None = None
    _signalled: set[int] = field(default_factory=set)
    _started: float = 0.0
    _is_stopping: bool = False

    def __post_init__(self) -> None:
        self.measured = Measured(self.tool.label)

    def start(self) -> None:
        """Write the script and start it in a new session; begin sampling."""
        self.files.dest.mkdir(parents=True, exist_ok=True)
        self.files.home.mkdir(parents=True, exist_ok=True)
        path = self.files.root / "run.sh"
        path.write_text(live_tools.script(self.tool, self.urls, self.files))
        env = {**os.environ, **live_tools.environment(self.files)}
        self._started = time.monotonic()
        self._proc = subprocess.Popen(
            ["bash", str(path)], cwd=self.files.root, env=env, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self._sampler = asyncio.create_task(self._sample())

    @property
    def is_running(self) -> bool:
        """The script has not exited yet."""
        return self._proc is not None and self._proc.poll() is None

    async def wait_exit(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the script to end by itself; whether it has."""
        deadline = time.monotonic() + timeout_s
        # A Popen has nothing to await; polling it keeps the executor free for the samplers.
        while self.is_running and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)
        return not self.is_running

    def tell_stop(self) -> None:
        """Create the STOP file: the loops start no recorder again (the room API says off)."""
        self._is_stopping = True
        self.files.stop.touch()

    async def stop(self, grace_s: float) -> None:
        """STOP, one SIGINT per recorder process, the session killed after ``grace_s``."""
        self.tell_stop()
        deadline = time.monotonic() + grace_s
        while self.is_running and time.monotonic() < deadline:
            self._interrupt_recorders()
            await asyncio.sleep(POLL_S)
        if self.is_running and self._proc is not None:
            self.measured.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        await self.wait_exit(10.0)

    async def finish(self) -> Measured:
        """Stop sampling, read the CPU and measure the outputs (after the script exited)."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        m = self.measured
        m.wall_s = time.monotonic() - self._started
        stat = self.files.stat.read_text() if self.files.stat.is_file() else ""
        m.cpu_s = proc_tree.cpu_s_from_stat(stat) if stat else m.sampled_cpu_s
        if not stat:
            m.error = "killed before its stat was written: CPU from the last sample"
        _measure_outputs(m, self.files.dest)
        if self.tool.name == "hauler":
            _read_hauler_json(m, self.files.stdout)
        return m

    def _interrupt_recorders(self) -> None:
        assert self._proc is not None
        tree = proc_tree.members(self._proc.pid)
        shells = {p.pid for p in tree if p.comm == "bash"}
        for member in tree:
            if (
                member.ppid in shells
                and member.comm != "bash"
                and member.pid not in self._signalled
            ):
                self._signalled.add(member.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member.pid, signal.SIGINT)

    async def _sample(self) -> None:
        assert self._proc is not None
        m, root = self.measured, self._proc.pid
        while True:
            now = await asyncio.to_thread(proc_tree.sample, root, leave_out=root)
            m.peak_processes = max(m.peak_processes, now.processes)
            m.sampled_cpu_s = max(m.sampled_cpu_s, now.cpu_s)
            m.peak_rss_mib = max(m.peak_rss_mib, now.rss_kib / 1024)
            m.peak_pss_mib = max(m.peak_pss_mib, now.pss_kib / 1024)
            if not self._is_stopping:
                m.recording_rss_mib = max(m.recording_rss_mib, now.rss_kib / 1024)
                m.recording_pss_mib = max(m.recording_pss_mib, now.pss_kib / 1024)
            await asyncio.sleep(SAMPLE_INTERVAL_S)


def _measure_outputs(m: Measured, dest: Path) -> None:
    """ffprobe every media file under ``dest``; empty files (a start that got nothing) skipped."""
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        if path.suffix not in MEDIA_SUFFIXES:
            m.leftovers.append(path.name)
            continue
        if path.stat().st_size == 0:
            continue
        probe = ffprobe_check.probe(path)
        if probe.error or probe.duration_s <= 0:
            m.unreadable.append(path.name)
            continue
        m.files += 1
        m.recorded_s += probe.duration_s


def _read_hauler_json(m: Measured, stdout: Path) -> None:
    """hauler's --json: one object per room (gaps, recorded_s, end)."""
    text = stdout.read_text(errors="replace") if stdout.is_file() else ""
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            room = json.loads(line)
            m.gaps += [dict(g) for g in room.get("gaps") or []]
            m.reported_s += float(room.get("recorded_s") or 0.0)
            m.ends.append(str(room.get("end")))
