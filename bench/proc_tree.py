"""A tool's process tree, read from /proc: who is in it, its memory now, its CPU at exit.

The tree is the session the harness started the tool in (``start_new_session``): every process
whose session id is the root's pid, so restarted ffmpegs and hauler's ffprobes are all in it.
Memory is summed over the tree: VmRSS (what the brief measures; shared library pages count once
per process) and Pss from ``smaps_rollup`` (shared pages split between the processes that map
them: the fairer sum for a tool that is many processes). CPU comes from the root's
``/proc/PID/stat`` read by the root itself as its last act: its cutime + cstime hold every
descendant it (and they) waited for, which is the whole tree once all have exited.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Fields of /proc/PID/stat after the ")" that closes comm (0-based): state, ppid, ..., session.
PPID_FIELD = 1
SESSION_FIELD = 3
UTIME_FIELD = 11  # then stime, cutime, cstime


@dataclass(frozen=True, slots=True)
class Member:
    """One process of the tree: its pid, parent, and command name."""

    pid: int
    ppid: int
    comm: str


@dataclass(frozen=True, slots=True)
class Sample:
    """The tree at one instant: how many processes, their summed VmRSS and Pss in KiB, and
    their CPU so far (own + reaped children's; what exited unreaped is missed)."""

    processes: int
    rss_kib: int
    pss_kib: int
    cpu_s: float = 0.0


def members(session: int) -> list[Member]:
    """The live processes of ``session`` (zombies and vanished ones left out)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if stat is None or ")" not in stat:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[SESSION_FIELD]) == session and fields[0] != "Z":
            found.append(Member(int(entry.name), int(fields[PPID_FIELD]), comm))
    return found


def sample(session: int, *, leave_out: int | None = None) -> Sample:
    """Sum the memory of ``session``'s processes (``leave_out``: the harness's own wrapper)."""
    rss = pss = count = 0
    cpu_s = 0.0
    for member in members(session):
        stat = _read(PROC / str(member.pid) / "stat")
        cpu_s += cpu_s_from_stat(stat) if stat and ")" in stat else 0.0
        if member.pid == leave_out:
            continue
        count += 1
        rss += _status_kib(member.pid, "VmRSS:")
        pss += _rollup_kib(member.pid, "Pss:")
    return Sample(count, rss, pss, cpu_s)


def cpu_s_from_stat(text: str) -> float:
    """utime + stime + cutime + cstime of one ``/proc/PID/stat`` text, in seconds."""
    fields = text[text.rindex(")") + 2 :].split()
    ticks = sum(int(v) for v in fields[UTIME_FIELD : UTIME_FIELD + 4])
    return ticks / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    return _field_kib(_read(PROC / str(pid) / "status"), key)


def _rollup_kib(pid: int, key: str) -> int:
    return _field_kib(_read(PROC / str(pid) / "smaps_rollup"), key)


def _field_kib(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _read(path: Path) -> str | None:
    # A process may exit between listing /proc and reading its files.
    with contextlib.suppress(OSError):
        return path.read_text()
    return None
