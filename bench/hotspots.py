"""py-spy profiles of hauler runs: the command wrapper and a top-N summary of the samples.

py-spy's raw format is one line per distinct stack, ``frame;frame;...;frame count``, each frame
``function (file:line)``; the summary folds line numbers so one function is one entry.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from runner import Command

PY_SPY_RATE_HZ = 250
LINE_NO = re.compile(r":\d+\)$")
TOP_N = 15


def py_spy_bin() -> Path:
    """py-spy in the same venv as hauler (pip install -e '.[bench]')."""
    return Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"


def wrap(cmd: Command, raw_path: Path) -> Command:
    """``cmd`` run under ``py-spy record``, writing collapsed stacks to ``raw_path``."""
    spy = [str(py_spy_bin()), "record", "--format", "raw", "--rate", str(PY_SPY_RATE_HZ)]
    argv = [*spy, "--output", str(raw_path), "--", *cmd.argv]
    return Command(argv, cmd.env, cmd.stdin_path)


def summary(raw_path: Path, top_n: int = TOP_N) -> str:
    """Top ``top_n`` by own samples (functions, then files) and hauler's functions inclusive."""
    own, by_file, inclusive, total = _fold(raw_path)
    if total == 0:
        return "(no samples)"
    sections = [
        ("self, by function", own),
        ("self, by file", by_file),
        ("inclusive, hauler's functions", inclusive),
    ]
    lines = [f"{total} samples at {PY_SPY_RATE_HZ} Hz (idle excluded)"]
    for title, counts in sections:
        lines += ["", f"{title}:"]
        lines += [f"- {n / total:6.1%}  {name}" for name, n in counts.most_common(top_n)]
    return "\n".join(lines)


def _fold(raw_path: Path) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        own[_short(frames[-1])] += count
        by_file[_file_of(frames[-1])] += count
        for name in {_short(f) for f in frames if "hauler/" in f}:
            inclusive[name] += count
        total += count
    return own, by_file, inclusive, total


def _short(frame: str) -> str:
    """``function (path/to/file.py:12)`` -> ``function (file.py)``."""
    name, _, where = LINE_NO.sub(")", frame).partition(" (")
    return f"{name} ({Path(where.rstrip(')')).name})" if where else name


def _file_of(frame: str) -> str:
    """The frame's file: a site-packages package name, or the file's own name."""
    where = LINE_NO.sub(")", frame).partition(" (")[2].rstrip(")")
    if "site-packages/" in where:
        return where.split("site-packages/")[1].split("/")[0]
    return Path(where).name or "?"
