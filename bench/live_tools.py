"""What each live recorder of the bench runs: a bash script per run that the harness starts.

- ``ffmpeg``: ``ffmpeg -i URL -c copy -f mpegts OUT.ts`` per room, restarted by a loop whenever
  it exits (what DouyinLiveRecorder does: one ffmpeg per room), a new file per start;
- ``streamlink``: ``streamlink URL best -o OUT.ts`` per room, the same loop; it lives in a venv
  of its own (``bench/.venv-peers``), never in hauler's;
- ``hauler``: ``hauler record URL... -o DIR --split 10m --json``, one process for every room.

The loops restart 1 s after an exit (a peer's best case: DouyinLiveRecorder waits longer) and
stop when the harness creates the STOP file, which stands for the room API a recorder asks
whether the room is still on the air: a peer is told the stream ended, hauler finds out itself.
Every loop is bounded (``MAX_STARTS``). The script's last act is to copy its own
``/proc/$$/stat`` (proc_tree.cpu_s_from_stat reads the whole tree's CPU from it).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import tools

PEERS_VENV = Path(__file__).resolve().parent / ".venv-peers"
MAX_STARTS = 300  # per room: far more restarts than any scenario can need
RESTART_DELAY_S = 1
SPLIT = "10m"


@dataclass(frozen=True, slots=True)
class LiveTool:
    """One recorder: its key (``ffmpeg``, ``streamlink``, ``hauler``) and its report label."""

    name: str
    label: str


TOOLS = [
    LiveTool("hauler", f"hauler record --split {SPLIT} (one process)"),
    LiveTool("ffmpeg", "ffmpeg -c copy, one per room, in a restart loop"),
    LiveTool("streamlink", "streamlink best, one per room, in a restart loop"),
]


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Where one run's script, outputs and leftovers go (all under ``root``)."""

    root: Path

    @property
    def dest(self) -> Path:
        """The recordings."""
        return self.root / "out"

    @property
    def home(self) -> Path:
        """A private HOME (and XDG directories) for the tool."""
        return self.root / "home"

    @property
    def stop(self) -> Path:
        """Created by the harness: the loops stop restarting."""
        return self.root / "STOP"

    @property
    def stat(self) -> Path:
        """The script's own /proc stat, copied as it exits."""
        return self.root / "root.stat"

    @property
    def stdout(self) -> Path:
        """The tool's stdout (hauler's --json)."""
        return self.root / "stdout.txt"

    @property
    def log(self) -> Path:
        """The tool's stderr."""
        return self.root / "stderr.log"


def streamlink_bin() -> Path:
    """streamlink of the bench's own venv."""
    return PEERS_VENV / "bin" / "streamlink"


def availability(tool: LiveTool) -> str | None:
    """None when ``tool`` can run here, else why not."""
    if tool.name == "hauler":
        return None if tools.hauler_bin().exists() else f"{tools.hauler_bin()} missing"
    if tool.name == "streamlink" and not streamlink_bin().exists():
        return f"{streamlink_bin()} missing: python3 -m venv {PEERS_VENV} && pip install streamlink"
    return None if shutil.which("ffmpeg") else "ffmpeg not installed"


def version(tool: LiveTool) -> str:
    """The first line of the tool's version output (hauler: its commit)."""
    argv = {
        "hauler": ["git", "-C", str(tools.REPO), "log", "-1", "--format=%h"],
        "ffmpeg": ["ffmpeg", "-version"],
        "streamlink": [str(streamlink_bin()), "--version"],
    }[tool.name]
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    except OSError:
        return "unavailable"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def script(tool: LiveTool, urls: list[str], files: RunFiles) -> str:
    """The bash script that records ``urls`` with ``tool`` into ``files.dest``."""
    tail = f"cat /proc/$$/stat > {_q(files.stat)}\n"
    io = f"> {_q(files.stdout)} 2>> {_q(files.log)}"
    if tool.name == "hauler":
        argv = [str(tools.hauler_bin()), "record", "--json", "-o", str(files.dest)]
        argv += ["--split", SPLIT, *urls]
        return f"{shlex.join(argv)} < /dev/null {io}\n{tail}"
    rooms = [_loop(tool, url, files, index) for index, url in enumerate(urls)]
    return "\n".join(f"( {room} ) {io} &" for room in rooms) + f"\nwait\n{tail}"


def environment(files: RunFiles) -> dict[str, str]:
    """Private HOME and XDG directories: no store, archive or config from another run."""
    home = str(files.home)
    return {
        "HOME": home,
        "XDG_DATA_HOME": f"{home}/data",
        "XDG_CONFIG_HOME": f"{home}/config",
        "XDG_CACHE_HOME": f"{home}/cache",
        "XDG_STATE_HOME": f"{home}/state",
    }


def _loop(tool: LiveTool, url: str, files: RunFiles, index: int) -> str:
    """One room's bounded restart loop: a new output file per start."""
    out = f"{files.dest}/room{index:02d}"
    stop = _q(files.stop)
    body = f"{_peer_command(tool, url)} {_q(out)}.$i.ts < /dev/null"
    return (
        f"i=0; while [ ! -e {stop} ] && [ $i -lt {MAX_STARTS} ]; do i=$((i+1)); {body}; "
        f"[ -e {stop} ] || sleep {RESTART_DELAY_S}; done"
    )


def _peer_command(tool: LiveTool, url: str) -> str:
    if tool.name == "ffmpeg":
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", url]
        return shlex.join([*argv, "-c", "copy", "-f", "mpegts"])
    argv = [str(streamlink_bin()), "--loglevel", "error", "--force", url, "best", "-o"]
    return shlex.join(argv)


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))
