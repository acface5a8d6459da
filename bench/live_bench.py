"""Live-recording benchmark: ``hauler record`` against a restart loop of ffmpeg or streamlink.

    python bench/live_bench.py [--only r1,r2,r3] [--rooms 10,20] [--repeat N] [--tools ...]

Scenarios (bench/README.md has the details), on tests/live/stream.py's real-time HLS streams
(ffmpeg, 1 s segments, served on 127.0.0.1):
  r1  resources: N rooms (10, 20) recorded for 40 s by each tool in turn, fresh streams for
      each: peak RSS and PSS of the whole process tree (sampled every 0.5 s from /proc), CPU s of
      the tree, media recorded (ffprobe) against media on the air
  r2  a drop inside the window: one room, a 12 s window, the playlist 404 for 8 s after 15 s,
      20 s more, then ENDLIST; every tool at once on the same stream
  r3  a drop beyond the window: a 6 s window, a 20 s outage after 15 s, 15 s more, ENDLIST

The table (medians of --repeat runs) is printed and written to bench/out/live-<stamp>.md/.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import live_tools
import report
import tools
from live_run import Measured, ToolRun
from live_tools import LiveTool, RunFiles

sys.path.insert(0, str(tools.REPO))  # tests/live/stream.py: the real-time HLS stream
from tests.live.stream import HlsStream

OUT = Path(__file__).resolve().parent / "out"
STOP_GRACE_S = 20.0  # SIGINT to exit: hauler closes, probes and renames its open parts
HAULER_END_TIMEOUT_S = 40.0  # after ENDLIST: hauler fetches the window's last segments
PEER_END_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Outage:
    """A drop scenario: the window, on air before, the 404's length, on air after."""

    key: str
    window_s: int
    before_s: float
    outage_s: float
    after_s: float

    @property
    def lost_s(self) -> float:
        """Media that left the window during the outage: no recorder can get it back."""
        return max(0.0, self.outage_s - self.window_s)


OUTAGES = {
    "r2": Outage("r2", window_s=12, before_s=15, outage_s=8, after_s=20),
    "r3": Outage("r3", window_s=6, before_s=15, outage_s=20, after_s=15),
}


@dataclass(frozen=True, slots=True)
class Options:
    """What this invocation runs."""

    keys: list[str]
    rooms: list[int]
    seconds: float
    repeat: int
    tools: list[LiveTool]
    work: Path


@dataclass(slots=True)
class Result:
    """One scenario row: the tool, the runs, why it was skipped."""

    scenario: str
    title: str
    tool: LiveTool
    runs: list[Measured]
    skipped: str | None = None


async def _streams(root: Path, count: int, window_s: int) -> list[HlsStream]:
    """``count`` started real-time streams (started at once: each waits for its first segment)."""
    streams = [HlsStream(root / f"stream{i:02d}", list_size=window_s) for i in range(count)]
    await asyncio.gather(*(s.start() for s in streams))
    return streams


async def _close(streams: list[HlsStream]) -> None:
    await asyncio.gather(*(s.close() for s in streams))


async def run_r1(rooms: int, tool: LiveTool, seconds: float, root: Path) -> Measured:
    """``rooms`` fresh streams recorded by ``tool`` for ``seconds``."""
    streams = await _streams(root / "streams", rooms, window_s=6)
    run = ToolRun(tool, [s.url for s in streams], RunFiles(root / tool.name))
    try:
        run.start()
        await asyncio.sleep(seconds)
        on_air_s = sum(s.produced_s for s in streams)
    finally:
        await run.stop(STOP_GRACE_S)
        await _close(streams)
    measured = await run.finish()
    measured.on_air_s = on_air_s
    return measured


async def run_outage(sc: Outage, chosen: list[LiveTool], root: Path) -> list[Measured]:
    """Every tool at once on one stream that drops for ``sc.outage_s`` and then ends."""
    (stream,) = await _streams(root / "streams", 1, sc.window_s)
    runs = [ToolRun(t, [stream.url], RunFiles(root / t.name)) for t in chosen]
    try:
        for run in runs:
            run.start()
        await _drive(stream, sc)
        on_air_s = stream.produced_s
        await _let_end(runs)
    finally:
        await asyncio.gather(*(r.stop(STOP_GRACE_S) for r in runs))
        await stream.close()
    measured = [await r.finish() for r in runs]
    for m in measured:
        m.on_air_s = on_air_s
    return measured


async def _drive(stream: HlsStream, sc: Outage) -> None:
    await asyncio.sleep(sc.before_s)
    stream.go_missing()
    print(f"   [{sc.key}] playlist 404 for {sc.outage_s:g} s", flush=True)
    await asyncio.sleep(sc.outage_s)
    stream.resume()
    await asyncio.sleep(sc.after_s)
    await stream.end()
    print(f"   [{sc.key}] ENDLIST after {stream.produced_s:.1f} s on air", flush=True)


async def _let_end(runs: list[ToolRun]) -> None:
    """hauler finds the end itself; the peers' loops are told (STOP), their recorders read the
    ENDLIST and exit by themselves, or are stopped after PEER_END_TIMEOUT_S."""
    for run in runs:
        if run.tool.name != "hauler":
            run.tell_stop()
    await asyncio.gather(
        *(r.wait_exit(HAULER_END_TIMEOUT_S if r.tool.name == "hauler" else PEER_END_TIMEOUT_S)
          for r in runs)
    )  # fmt: skip


async def run_all(opts: Options) -> list[Result]:
    """Every chosen scenario, ``opts.repeat`` times (r1's tools in a rotated order each round)."""
    results = _plan(opts)
    by_key = {(r.scenario, r.tool.name): r for r in results}
    for rep in range(opts.repeat):
        for rooms in opts.rooms if "r1" in opts.keys else []:
            key = f"r1/{rooms}"
            runnable = [r.tool for r in results if r.scenario == key and not r.skipped]
            shift = rep % max(len(runnable), 1)
            for tool in runnable[shift:] + runnable[:shift]:
                root = opts.work / f"{key.replace('/', '-')}-{tool.name}-{rep}"
                m = await run_r1(rooms, tool, opts.seconds, root)
                by_key[(key, tool.name)].runs.append(m)
                _progress(key, rep, opts.repeat, m)
                shutil.rmtree(root, ignore_errors=True)
        for key in (k for k in ("r2", "r3") if k in opts.keys):
            runnable = [r.tool for r in results if r.scenario == key and not r.skipped]
            root = opts.work / f"{key}-{rep}"
            print(f"== {key} round {rep + 1}: {', '.join(t.name for t in runnable)}", flush=True)
            for m, tool in zip(
                await run_outage(OUTAGES[key], runnable, root), runnable, strict=True
            ):
                by_key[(key, tool.name)].runs.append(m)
                _progress(key, rep, opts.repeat, m)
            shutil.rmtree(root, ignore_errors=True)
    return results


def _plan(opts: Options) -> list[Result]:
    results = []
    for rooms in opts.rooms if "r1" in opts.keys else []:
        title = f"{rooms} rooms, {opts.seconds:g} s each, a 6 s window"
        results += [
            Result(f"r1/{rooms}", title, t, [], live_tools.availability(t)) for t in opts.tools
        ]
    for key in (k for k in ("r2", "r3") if k in opts.keys):
        sc = OUTAGES[key]
        title = (f"one room, a {sc.window_s} s window, {sc.before_s:g} s on air, the playlist "
                 f"404 for {sc.outage_s:g} s, {sc.after_s:g} s more, ENDLIST")  # fmt: skip
        results += [Result(key, title, t, [], live_tools.availability(t)) for t in opts.tools]
    return results


def _progress(key: str, rep: int, repeat: int, m: Measured) -> None:
    gaps = f"  gaps {len(m.gaps)} ({_gap_s(m):.1f} s)" if m.tool.startswith("hauler") else ""
    print(f"[{key}] {rep + 1}/{repeat} {m.tool:<50} procs {m.peak_processes:3d}  "
          f"rss {m.recording_rss_mib:6.1f} ({m.peak_rss_mib:6.1f}) MiB  "
          f"pss {m.recording_pss_mib:6.1f} ({m.peak_pss_mib:6.1f}) MiB  cpu {m.cpu_s:6.2f} s  "
          f"recorded {m.recorded_s:7.1f} / {m.on_air_s:7.1f} s in {m.files} files{gaps}"
          + (f"  {m.error}" if m.error else "") + ("  KILLED" if m.killed else ""),
          flush=True)  # fmt: skip


def _gap_s(m: Measured) -> float:
    return sum(float(g.get("missing_s", 0.0)) for g in m.gaps)


def _median(runs: list[Measured], value: str) -> float:
    return statistics.median(float(getattr(m, value)) for m in runs)


def table(results: list[Result]) -> str:
    """The markdown table: medians of each row's runs."""
    names = ["scenario", "tool", "processes", "peak RSS MiB", "peak PSS MiB", "CPU s"]
    names[3:5] = ["peak RSS MiB recording (with stop)", "peak PSS MiB recording (with stop)"]
    names += ["recorded s", "on air s", "recorded ÷ on air", "files", "gaps reported"]
    lines = ["| " + " | ".join(names) + " |", "| --- | --- |" + " ---: |" * 8 + " --- |"]
    return "\n".join(lines + [_line(r) for r in results]) + "\n"


def _line(result: Result) -> str:
    head = [result.scenario, result.tool.label]
    if result.skipped or not result.runs:
        return "| " + " | ".join([*head, "skipped", result.skipped or "no run"]) + " |" + " |" * 7
    runs = result.runs
    rec, air = _median(runs, "recorded_s"), _median(runs, "on_air_s")
    cells = [f"{_median(runs, 'peak_processes'):.0f}"]
    cells += [_peaks(runs, "rss"), _peaks(runs, "pss"), f"{_median(runs, 'cpu_s'):.2f}"]
    cells += [f"{rec:.1f}", f"{air:.1f}", f"{rec / air:.2f}" if air else "n/a"]
    cells += [f"{_median(runs, 'files'):.0f}", _gaps_cell(result)]
    return "| " + " | ".join(head + cells) + " |"


def _peaks(runs: list[Measured], kind: str) -> str:
    recording, peak = _median(runs, f"recording_{kind}_mib"), _median(runs, f"peak_{kind}_mib")
    return f"{recording:.0f} ({peak:.0f})"


def _gaps_cell(result: Result) -> str:
    if result.tool.name != "hauler":
        return "none (not reported)"
    counts = statistics.median(len(m.gaps) for m in result.runs)
    missing = statistics.median(_gap_s(m) for m in result.runs)
    return f"{counts:.0f}, {missing:.1f} s missing" if counts else "0"


def ratios(results: list[Result]) -> str:
    """hauler's RSS, PSS and CPU over each peer's, per scenario (< 1: hauler uses less)."""
    lines = []
    for key in dict.fromkeys(r.scenario for r in results):
        rows = [r for r in results if r.scenario == key and r.runs]
        mine = next((r for r in rows if r.tool.name == "hauler"), None)
        for peer in (r for r in rows if r.tool.name != "hauler"):
            if mine is None:
                continue
            parts = [
                f"{name} {_median(mine.runs, attr) / _median(peer.runs, attr):.2f}"
                for name, attr in (("RSS recording", "recording_rss_mib"),
                                   ("RSS with stop", "peak_rss_mib"),
                                   ("PSS recording", "recording_pss_mib"),
                                   ("CPU", "cpu_s"), ("recorded", "recorded_s"))
                if _median(peer.runs, attr) > 0
            ]  # fmt: skip
            lines.append(f"- {key}: hauler / {peer.tool.name}: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="r1,r2,r3", help="scenarios to run")
    parser.add_argument("--rooms", default="10,20", help="r1's room counts")
    parser.add_argument("--seconds", type=float, default=40.0, help="r1's recording time")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool (median reported)")
    parser.add_argument("--tools", default="hauler,ffmpeg,streamlink", help="tools to run")
    parser.add_argument("--venv", type=Path, help="venv whose hauler is measured (default .venv)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios and write the report; 1 when a run broke."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args = parse_args(argv)
    if args.venv:
        os.environ[tools.VENV_ENV] = str(args.venv.absolute())
    names = args.tools.split(",")
    opts = Options(
        keys=args.only.split(","),
        rooms=[int(n) for n in args.rooms.split(",") if n],
        seconds=args.seconds,
        repeat=max(1, args.repeat),
        tools=[t for t in live_tools.TOOLS if t.name in names],
        work=OUT / "work" / f"live-{stamp}",
    )
    meta = _meta(opts)
    print(f"date {meta['date_utc']}  machine {meta['machine']}", flush=True)
    results = asyncio.run(run_all(opts))
    shutil.rmtree(opts.work, ignore_errors=True)
    text = _header(meta, results) + "\n" + table(results) + "\n" + ratios(results)
    text += _notes(results)
    md_path = _write(stamp, text, results, meta)
    print("\n" + table(results) + "\n" + ratios(results) + _notes(results))
    print(f"written: {md_path} and {md_path.with_suffix('.json')}")
    return 1 if any(m.error or m.killed for r in results for m in r.runs) else 0


def _meta(opts: Options) -> dict[str, object]:
    versions = {t.name: live_tools.version(t) for t in live_tools.TOOLS}
    versions["python"] = tools.versions()["python"]
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "commit": _commit(),
        "versions": versions,
        "repeat": opts.repeat,
        "r1_seconds": opts.seconds,
        "restart_delay_s": live_tools.RESTART_DELAY_S,
    }


def _commit() -> str:
    """HEAD's short hash, and whether src/ differs from it (the venv runs the working tree)."""
    git = ["git", "-C", str(tools.REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=False,
                          capture_output=True, text=True, timeout=30).stdout.strip()  # fmt: skip
    status = subprocess.run([*git, "status", "--porcelain", "--", "src"], check=False,
                            capture_output=True, text=True, timeout=30).stdout.strip()  # fmt: skip
    return head + (" + uncommitted changes in src/" if status else "")


def _header(meta: dict[str, object], results: list[Result]) -> str:
    m = dict(meta["machine"])  # type: ignore[call-overload]
    versions = dict(meta["versions"])  # type: ignore[call-overload]
    lines = [
        f"# hauler live-recording benchmark, {meta['date_utc']}",
        "",
        f"- machine: nproc {m['nproc']}, {m['cpu']}, {m['kernel']}, "
        f"load at start {m['loadavg_at_start']}",
        f"- hauler under test: {meta['commit']}",
        f"- median of {meta['repeat']} run(s) per tool; streams: tests/live/stream.py (ffmpeg "
        "real-time HLS, 1 s segments, 160x120 + AAC) on 127.0.0.1",
        f"- peers restart {meta['restart_delay_s']} s after an exit; told by a STOP file when "
        "a stream has ended (their room API); hauler finds the end itself",
    ]
    titles = dict.fromkeys((r.scenario, r.title) for r in results)
    lines += [f"- {key}: {title}" for key, title in titles]
    lines += [f"- {k}: {v}" for k, v in versions.items()]
    lines += ["", "processes, RSS and PSS: peak over the run of the tool's process tree "
              "(sampled every 0.5 s, the harness's wrapper shell left out); CPU s: user + sys "
              "of the whole tree; recorded: ffprobe durations of every output summed; on air: "
              "the media the streams listed while the tool ran; gaps: hauler's --json.",
              ""]  # fmt: skip
    return "\n".join(lines)


def _notes(results: list[Result]) -> str:
    lines = []
    for r in results:
        for m in r.runs:
            bits = [f"{len(m.unreadable)} unreadable output(s)"] if m.unreadable else []
            bits += [f"left {', '.join(m.leftovers[:4])}"] if m.leftovers else []
            bits += ["killed after the stop grace"] if m.killed else []
            bits += [m.error] if m.error else []
            stopped_early = r.scenario in OUTAGES and set(m.ends) - {"endlist"}
            bits += [f"hauler's end: {sorted(set(m.ends))}"] if stopped_early else []
            if bits:
                lines.append(f"- {r.scenario} {r.tool.name}: " + "; ".join(bits))
    for key, sc in OUTAGES.items():
        if any(r.scenario == key for r in results):
            lines.append(f"- {key}: {sc.lost_s:g} s of the outage left the window (lost to "
                         "any recorder); the rest was still listed when the playlist came "
                         "back")  # fmt: skip
    return ("\n" + "\n".join(lines) + "\n") if lines else ""


def _write(stamp: str, text: str, results: list[Result], meta: dict[str, object]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    md_path = OUT / f"live-{stamp}.md"
    md_path.write_text(text)
    rows = [
        {"scenario": r.scenario, "title": r.title, "tool": r.tool.label, "skipped": r.skipped,
         "runs": [asdict(m) for m in r.runs]}
        for r in results
    ]  # fmt: skip
    md_path.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    return md_path


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"total {time.monotonic() - started:.0f} s")
    sys.exit(code)
