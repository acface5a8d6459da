"""The command line each tool of the media bench gets: ``hauler get`` and ``yt-dlp``.

hauler's comes from tools.py (``get -d DIR --json -x N URL``, private XDG directories). yt-dlp is
the one installed in hauler's venv (the version hauler embeds), run without its configuration
files or cache and quietly, so that neither draws progress: ``--downloader`` and ``-N`` are what
a row adds.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import tools
from runner import Command
from tools import Job, Tool

YT_DLP_COMMON = ["--ignore-config", "--no-cache-dir", "--quiet", "--no-progress"]


@dataclass(frozen=True, slots=True)
class MediaTool:
    """One row: a label, ``hauler`` or ``yt-dlp``, hauler's connections, yt-dlp's extra args."""

    label: str
    name: str
    connections: int = 1
    args: list[str] = field(default_factory=list)
    needs: str | None = None  # another program this row runs (aria2c)


def yt_dlp_bin() -> Path:
    """yt-dlp of the venv under test: the same version hauler uses as a library."""
    return tools.hauler_venv() / "bin" / "yt-dlp"


def availability(tool: MediaTool) -> str | None:
    """None when ``tool`` can run here, else why not."""
    if tool.name == "hauler":
        return tools.availability("hauler")
    if not yt_dlp_bin().exists():
        return f"{yt_dlp_bin()} missing: run scripts/bootstrap.sh"
    if tool.needs and shutil.which(tool.needs) is None:
        return f"{tool.needs} not installed"
    return None


def command(tool: MediaTool, url: str, dest: Path, scratch: Path) -> Command:
    """The invocation of ``tool`` that saves the media of ``url`` into ``dest``."""
    if tool.name == "hauler":
        job = Job([url], dest, scratch / "urls.txt", 1, tool.connections, scratch)
        return tools.command(Tool(tool.label, "hauler", tool.connections), job)
    argv = [str(yt_dlp_bin()), *YT_DLP_COMMON, "-P", str(dest), *tool.args, url]
    return Command(argv, {"HOME": str(scratch), "XDG_CACHE_HOME": str(scratch / "cache")})


def shown(tool: MediaTool, url: str) -> str:
    """The row's command as a user would type it (for the report)."""
    if tool.name == "hauler":
        return f"hauler get -x {tool.connections} -d DIR {url}"
    args = " ".join(f"'{a}'" if " " in a else a for a in tool.args)
    return f"yt-dlp {args} {url}".replace("  ", " ")
