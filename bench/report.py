"""Medians of the repeated runs, the markdown table, the machine description, and the files."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runner import RunOutcome


@dataclass(slots=True)
class Row:
    """One tool in one scenario: its runs, and what one run moves (bytes or files)."""

    scenario: str
    label: str
    unit: str  # "MB/s" or "files/s"
    work: float  # MB for MB/s, a file count for files/s
    limit: float | None  # physical limit in ``unit`` for this row, when one exists
    note: str = ""
    skipped: str | None = None  # why this tool did not run, when it did not
    runs: list[RunOutcome] = field(default_factory=list)

    def ok_runs(self) -> list[RunOutcome]:
        """The runs that finished in time with every file correct."""
        return [r for r in self.runs if r.is_ok]

    def median_wall_s(self) -> float | None:
        """Median wall time of the good runs."""
        good = self.ok_runs()
        return statistics.median(r.wall_s for r in good) if good else None

    def rate(self) -> float | None:
        """Throughput of the median run, in ``unit``."""
        wall = self.median_wall_s()
        return self.work / wall if wall else None


def machine() -> dict[str, str]:
    """nproc, CPU model, kernel and load: what the numbers were measured on."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": f"{platform.system()} {platform.release()}",
        "loadavg_at_start": load,
    }


def table(rows: list[Row]) -> str:
    """The markdown results table; ratios are throughput over aria2c's and over the limit."""
    names = ["scenario", "tool", "time s", "rate", "CPU s", "peak RSS MiB", "× aria2c"]
    names += ["× limit", "runs ok"]
    head = "| " + " | ".join(names) + " |\n| --- | --- |" + " ---: |" * 7 + "\n"
    return head + "".join(_line(row, _aria2c_rate(rows, row.scenario)) for row in rows)


def _aria2c_rate(rows: list[Row], scenario: str) -> float | None:
    for row in rows:
        if row.scenario == scenario and row.label.startswith("aria2c"):
            return row.rate()
    return None


def _line(row: Row, aria2c_rate: float | None) -> str:
    good = row.ok_runs()
    label = f"{row.label} ({row.note})" if row.note else row.label
    count = f"{len(good)}/{len(row.runs)}"
    rate = row.rate()
    if row.skipped:
        return f"| {row.scenario} | {label} | skipped | {row.skipped} | | | | | 0/0 |\n"
    if rate is None:
        why = _first_error(row)
        return f"| {row.scenario} | {label} | FAILED | {why} | | | | | {count} |\n"
    cpu = statistics.median(r.cpu_s for r in good)
    rss = statistics.median(r.peak_rss_mib for r in good)
    vs_aria = f"{rate / aria2c_rate:.2f}" if aria2c_rate else "n/a"
    vs_limit = f"{rate / row.limit:.2f} of {row.limit:.0f}" if row.limit else "n/a"
    cells = [row.scenario, label, f"{row.median_wall_s():.2f}", f"{rate:.1f} {row.unit}"]
    cells += [f"{cpu:.2f}", f"{rss:.0f}", vs_aria, vs_limit, count]
    return "| " + " | ".join(cells) + " |\n"


def _first_error(row: Row) -> str:
    for run in row.runs:
        if run.error:
            err = run.error.replace("|", "/").replace("\n", " ")
            return err if len(err) <= 160 else f"{err[:24]} … {err[-130:]}"
    return "no run"


def failures(rows: list[Row]) -> str:
    """One line per failed run, so a wrong file is visible even when other runs were fine."""
    lines = []
    for row in rows:
        for i, run in enumerate(row.runs):
            if run.error:
                err = run.error.replace("\n", " ")[:300]
                lines.append(f"- {row.scenario} / {row.label} run {i + 1}: {err}")
    return "\n".join(lines)


def write(out_dir: Path, stamp: str, header: str, rows: list[Row], meta: dict[str, object]) -> Path:
    """Write results-<stamp>.md and .json into ``out_dir``; return the markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / f"results-{stamp}.md"
    failed = failures(rows)
    body = header + "\n" + table(rows) + ("\n### Failed runs\n" + failed + "\n" if failed else "")
    md_path.write_text(body)
    data = {**meta, "rows": [_row_json(r) for r in rows]}
    (out_dir / f"results-{stamp}.json").write_text(json.dumps(data, indent=2))
    return md_path


def _row_json(row: Row) -> dict[str, object]:
    return {
        "scenario": row.scenario,
        "tool": row.label,
        "note": row.note,
        "skipped": row.skipped,
        "unit": row.unit,
        "work": row.work,
        "limit": row.limit,
        "median_wall_s": row.median_wall_s(),
        "rate": row.rate(),
        "runs": [asdict(r) for r in row.runs],
    }
