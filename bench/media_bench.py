"""Media benchmark: ``hauler get`` of a video page or an HLS VOD against yt-dlp, in one run.

    python bench/media_bench.py [--only m1,m2,m2d,m2s] [--repeat N] [--profile]

Scenarios (bench/README.md has the details):
  m1   a ~200 MiB MP4 behind an HTML page with a <video> tag, 2 MB/s per connection:
       hauler -x16 against yt-dlp (its own downloader) and yt-dlp --downloader aria2c
  m2   an HLS VOD of 300 one-second fragments behind the same cap, which one fragment never
       reaches: hauler -x16 against yt-dlp -N 16, request-bound
  m2d  m2 through a proxy that holds every request 40 ms (a distant CDN)
  m2s  m2 behind a cap that binds on every fragment (0.25 MB/s): rate-bound

The media is made once with ffmpeg (bench/out/media); nginx serves it on 127.0.0.1. Every output
is checked with ffprobe (streams, duration) and, for the MP4, by sha256 against the source. The
table (medians of --repeat runs) is printed and written to bench/out/media-<stamp>.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import delay_proxy
import ffprobe_check
import hotspots
import media_corpus
import media_tools
import origin
import report
import runner
import tools
from corpus import CorpusError
from media_corpus import MediaItem, MediaWant
from media_tools import MediaTool
from report import Row
from runner import RunOutcome

OUT = Path(__file__).resolve().parent / "out"
MIB = 1 << 20
X = 16  # connections (hauler) and concurrent fragments (yt-dlp -N): aria2c's ceiling
CAP_CHECK_BYTES = 32 * MIB  # shorter transfers overshoot nginx's cap (bench/README.md)
CAP_TOLERANCE = 0.05
CURL_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One comparison: the media, the cap in front of it, an added delay, the tools."""

    key: str
    title: str
    item: str  # "mp4" or "hls": which MediaItem
    cap_bps: int
    delay_s: float  # added to each request by the delay proxy, when ``is_proxied``
    tools: list[MediaTool]
    reference: str  # the label whose time the others are divided by
    timeout_s: float
    is_proxied: bool = False


@dataclass(slots=True)
class MediaRow:
    """One tool in one scenario: the runs (report.Row), what the output was, hauler's own time."""

    row: Row
    tool: MediaTool
    containers: set[str] = field(default_factory=set)
    inner_s: list[float] = field(default_factory=list)  # hauler's --json elapsed_s


@dataclass(frozen=True, slots=True)
class Options:
    """What this invocation runs, resolved from the command line."""

    keys: list[str]
    repeat: int
    cap_bps: int
    hls_cap_bps: int
    delay_s: float
    download_root: Path
    profile_prefix: str | None
    want: MediaWant


def scenarios(opts: Options, items: dict[str, MediaItem]) -> list[Scenario]:
    """The media scenarios, sized by the made media and the caps."""
    aria2_args = ["--downloader", "aria2c", "--downloader-args", f"aria2c:-x{X} -s{X} -k1M"]
    page_tools = [
        MediaTool("yt-dlp", "yt-dlp"),
        MediaTool(f"yt-dlp --downloader aria2c -x{X} -s{X} -k1M", "yt-dlp", args=aria2_args,
                  needs="aria2c"),
        MediaTool(f"hauler get -x{X}", "hauler", X),
    ]  # fmt: skip
    hls_tools = [MediaTool(f"yt-dlp -N {X}", "yt-dlp", args=["-N", str(X)])]
    hls_tools.append(MediaTool(f"hauler get -x{X}", "hauler", X))
    mp4, hls = items["mp4"], items["hls"]
    frag_bytes = hls.size // opts.want.hls_fragments
    frags = f"HLS VOD, {opts.want.hls_fragments} fragments of ~{frag_bytes / 1e6:.2f} MB"
    cap, slow_cap = f"{opts.cap_bps / 1e6:g} MB/s", f"{opts.hls_cap_bps / 1e6:g} MB/s"
    hls_timeout_s = 4 * hls.size / (opts.hls_cap_bps * X) + 120
    return [
        Scenario("m1", f"MP4 of {mp4.size / MIB:.0f} MiB behind an HTML page, {cap} per "
                 "connection", "mp4", opts.cap_bps, 0.0, page_tools, "yt-dlp",
                 timeout_s=2 * mp4.size / opts.cap_bps + 60),
        Scenario("m2", f"{frags}, {cap} per connection (one fragment is within nginx's "
                 "first-second allowance: request-bound)", "hls", opts.cap_bps, 0.0, hls_tools,
                 hls_tools[0].label, hls_timeout_s),
        Scenario("m2d", f"m2 through a proxy adding {opts.delay_s * 1000:g} ms to every "
                 "request", "hls", opts.cap_bps, opts.delay_s, hls_tools, hls_tools[0].label,
                 hls_timeout_s, is_proxied=True),
        Scenario("m2s", f"{frags}, {slow_cap} per connection (binds on every fragment: "
                 "rate-bound)", "hls", opts.hls_cap_bps, 0.0, hls_tools, hls_tools[0].label,
                 hls_timeout_s),
    ]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="m1,m2,m2d,m2s", help="scenarios to run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (median reported)")
    parser.add_argument("--cap-mbps", type=float, default=2.0, help="m1's cap per connection")
    parser.add_argument(
        "--hls-cap-mbps", type=float, default=0.25, help="m2s's cap per connection, MB/s"
    )
    parser.add_argument("--delay-ms", type=float, default=40.0, help="m2d's added latency")
    parser.add_argument("--mp4-mib", type=int, default=200, help="size of m1's MP4")
    parser.add_argument("--fragments", type=int, default=300, help="m2's fragment count")
    parser.add_argument("--profile", action="store_true", help="one more hauler run under py-spy")
    parser.add_argument("--download-dir", type=Path, help="default bench/out/work (on disk)")
    parser.add_argument("--venv", type=Path, help="venv whose hauler is measured (default .venv)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios and write the report; 1 when a run failed or setup broke."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args = parse_args(argv)
    if args.venv:
        os.environ[tools.VENV_ENV] = str(args.venv.absolute())
    opts = _options(args, stamp)
    meta = _meta(opts)
    print(f"date {meta['date_utc']}  machine {meta['machine']}\n  hauler: {meta['commit']}")
    try:
        chosen, rows = _run(opts, meta)
    except (CorpusError, origin.OriginError, delay_proxy.ProxyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = _header(meta, chosen) + "\n" + table(chosen, rows) + "\n" + _verdicts(chosen, rows)
    failed = report.failures([r.row for r in rows])
    md_path = _write(stamp, text, failed, rows, meta)
    print("\n" + table(chosen, rows) + "\n" + _verdicts(chosen, rows))
    if failed:
        print("Failed runs:\n" + failed)
    print(f"written: {md_path} and {md_path.with_suffix('.json')}")
    return 1 if failed else 0


def _options(args: argparse.Namespace, stamp: str) -> Options:
    return Options(
        keys=args.only.split(","),
        repeat=max(1, args.repeat),
        cap_bps=int(args.cap_mbps * 1e6),
        hls_cap_bps=int(args.hls_cap_mbps * 1e6),
        delay_s=args.delay_ms / 1000,
        download_root=(args.download_dir or OUT / "work").resolve(),
        profile_prefix=f"media-profile-{stamp}" if args.profile else None,
        want=MediaWant(mp4_mib=args.mp4_mib, hls_fragments=args.fragments),
    )


def _meta(opts: Options) -> dict[str, object]:
    versions = tools.versions()
    versions["yt-dlp"] = _first_line([str(media_tools.yt_dlp_bin()), "--version"])
    versions["ffmpeg"] = _first_line(["ffmpeg", "-version"])
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "commit": _commit(),
        "versions": versions,
        "repeat": opts.repeat,
        "cap_bps": opts.cap_bps,
        "hls_cap_bps": opts.hls_cap_bps,
        "delay_s": opts.delay_s,
        "download_dir": str(opts.download_root),
        "checks": {},
    }


def _commit() -> str:
    """HEAD's short hash, and whether src/ differs from it (the venv runs the working tree)."""
    git = ["git", "-C", str(tools.REPO)]
    head = _first_line([*git, "rev-parse", "--short", "HEAD"])
    status = [*git, "status", "--porcelain", "--", "src"]
    changed = subprocess.run(status, check=False, capture_output=True, text=True, timeout=30)
    return head + (" + uncommitted changes in src/" if changed.stdout.strip() else "")


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _run(opts: Options, meta: dict[str, object]) -> tuple[list[Scenario], list[MediaRow]]:
    opts.download_root.mkdir(parents=True, exist_ok=True)
    (OUT / "work").mkdir(parents=True, exist_ok=True)
    items = media_corpus.ensure(OUT / "media", opts.want)
    meta["media"] = {k: asdict(v) for k, v in items.items()}
    chosen = [s for s in scenarios(opts, items) if s.key in opts.keys]
    rows: list[MediaRow] = []
    with tempfile.TemporaryDirectory(dir=opts.download_root) as dl_tmp:
        for sc in chosen:
            with (
                tempfile.TemporaryDirectory(dir=OUT / "work") as state,
                _served(sc, Path(state)) as base,
            ):
                skip = _check_origin(sc, base, items[sc.item], meta)
                rows += _run_scenario(
                    sc, base, items[sc.item], Path(dl_tmp), repeat=opts.repeat, skip=skip
                )
                if opts.profile_prefix and skip is None:
                    _profile_hauler(sc, base, items[sc.item], Path(dl_tmp), opts.profile_prefix)
    return chosen, rows


@contextlib.contextmanager
def _served(sc: Scenario, state: Path) -> Iterator[str]:
    """nginx with the scenario's cap (and the delay proxy in front when it has a delay)."""
    cfg = origin.OriginConfig(OUT / "media", sc.cap_bps)
    with origin.running(cfg, state) as o:
        if not sc.is_proxied:
            yield o.capped_base
            return
        with delay_proxy.running(o.capped_base, sc.delay_s, state / "proxy.log") as base:
            yield base


def _check_origin(sc: Scenario, base: str, item: MediaItem, meta: dict[str, object]) -> str | None:
    """Measure what one connection gets; a reason to skip ``sc`` when the cap does not hold."""
    checks: dict[str, object] = meta["checks"]  # type: ignore[assignment]
    if sc.item == "mp4":
        rate = _curl_rate(f"{base}/{item.name}", f"0-{CAP_CHECK_BYTES - 1}")
        drift = rate / sc.cap_bps - 1
        checks[sc.key] = (
            f"{CAP_CHECK_BYTES // MIB} MiB over one connection at {rate / 1e6:.3f} MB/s "
            f"({drift:+.1%} of the cap)"
        )
        print(f"cap check, {sc.key}: {checks[sc.key]}", flush=True)
        if drift > CAP_TOLERANCE:
            return f"cap does not hold: {rate / 1e6:.2f} MB/s > {sc.cap_bps / 1e6:.2f}"
        return None
    segment = f"{base}/hls/seg00001.ts"
    started = time.perf_counter()
    rate = _curl_rate(segment, None)
    elapsed = time.perf_counter() - started
    checks[sc.key] = f"one fragment over one connection in {elapsed:.2f} s ({rate / 1e6:.2f} MB/s)"
    print(f"fragment check, {sc.key}: {checks[sc.key]}", flush=True)
    return None


def _curl_rate(url: str, byte_range: str | None) -> float:
    """One curl of ``url`` (or of ``byte_range`` of it): its average rate in bytes/s."""
    argv = ["curl", "-q", "-sS", "-f", "-o", os.devnull, "-w", "%{speed_download}"]
    argv += ["-r", byte_range] if byte_range else []
    try:
        done = subprocess.run(
            [*argv, url], check=False, capture_output=True, text=True, timeout=CURL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise origin.OriginError(f"curl of {url} timed out") from exc
    if done.returncode != 0:
        raise origin.OriginError(f"curl of {url} failed ({done.returncode}): {done.stderr}")
    return float(done.stdout.strip())


def _run_scenario(
    sc: Scenario, base: str, item: MediaItem, tmp: Path, *, repeat: int, skip: str | None
) -> list[MediaRow]:
    url = _entry_url(sc, base, item)
    rows = [_row(sc, t, item, skip) for t in sc.tools]
    runnable = [r for r in rows if not r.row.skipped]
    print(f"\n== {sc.key}: {sc.title}\n   {url}", flush=True)
    for rep in range(repeat):
        shift = rep % max(len(runnable), 1)  # rotate the order so drift hits every tool alike
        for mrow in runnable[shift:] + runnable[:shift]:
            outcome = _measure(sc, mrow, url, item, tmp)
            mrow.row.runs.append(outcome)
            status = "ok" if outcome.is_ok else f"FAILED: {outcome.error}"
            print(f"[{sc.key}] {rep + 1}/{repeat} {mrow.tool.label:<42} {outcome.wall_s:8.2f} s  "
                  f"cpu {outcome.cpu_s:6.2f} s  rss {outcome.peak_rss_mib:5.0f} MiB  {status}",
                  flush=True)  # fmt: skip
    return rows


def _entry_url(sc: Scenario, base: str, item: MediaItem) -> str:
    """What a user hands the tool: the page around the MP4, the HLS master playlist."""
    return f"{base}/video.html" if sc.item == "mp4" else f"{base}/{item.name}"


def _row(sc: Scenario, tool: MediaTool, item: MediaItem, skip: str | None) -> MediaRow:
    why = skip or media_tools.availability(tool)
    return MediaRow(Row(sc.key, tool.label, "MB/s", item.size / 1e6, None, skipped=why), tool)


def _measure(
    sc: Scenario,
    mrow: MediaRow,
    url: str,
    item: MediaItem,
    tmp: Path,
    *,
    raw_profile: Path | None = None,
) -> RunOutcome:
    """One run of ``mrow``'s tool in a fresh directory: timed, then checked by ffprobe."""
    job_dir = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{sc.key}-{mrow.tool.name}-"))
    dest, scratch = job_dir / "dl", job_dir / "home"
    dest.mkdir()
    scratch.mkdir()
    try:
        cmd = media_tools.command(mrow.tool, url, dest, scratch)
        if raw_profile is not None:
            cmd = hotspots.wrap(cmd, raw_profile)
        log = job_dir / "output.log"
        outcome = runner.run_once(cmd, scratch, log, sc.timeout_s)
        if outcome.is_ok and mrow.tool.name == "hauler" and raw_profile is None:
            mrow.inner_s += _hauler_elapsed(log)
        return _checked(outcome, dest, item, mrow)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def _checked(outcome: RunOutcome, dest: Path, item: MediaItem, mrow: MediaRow) -> RunOutcome:
    """``outcome`` with ``error`` set unless ``dest`` holds one file that matches ``item``."""
    if not outcome.is_ok:
        return outcome
    entries = sorted(p.name for p in dest.iterdir())
    if len(entries) != 1 or not (dest / entries[0]).is_file():
        return _failed(outcome, f"want one file in the output directory, found {entries}")
    path = dest / entries[0]
    probe = ffprobe_check.probe(path)
    sha256 = item.sha256 or None  # the MP4 must come back byte for byte; HLS is remuxed
    problem = ffprobe_check.problem(path, probe, item.streams, item.duration_s, sha256)
    if problem:
        return _failed(outcome, problem)
    mrow.containers.add(f"{probe.format_name.split(',')[0]} (.{path.suffix.lstrip('.')})")
    return outcome


def _failed(outcome: RunOutcome, error: str) -> RunOutcome:
    return RunOutcome(outcome.wall_s, outcome.cpu_s, outcome.peak_rss_mib, outcome.exit_code, error)


def _hauler_elapsed(log: Path) -> list[float]:
    """hauler's own ``elapsed_s`` from its ``--json`` summary (process start-up excluded)."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return [float(json.loads(line)["elapsed_s"])]
    return []


def _profile_hauler(sc: Scenario, base: str, item: MediaItem, tmp: Path, prefix: str) -> None:
    """One unmeasured hauler run under py-spy; print and save its hot spots."""
    if not hotspots.py_spy_bin().exists():
        print("--profile: py-spy missing: .venv/bin/pip install -e '.[bench]'", flush=True)
        return
    for tool in (t for t in sc.tools if t.name == "hauler"):
        raw = OUT / f"{prefix}-{sc.key}.txt"
        mrow = MediaRow(Row(sc.key, tool.label, "MB/s", 0.0, None), tool)
        outcome = _measure(sc, mrow, _entry_url(sc, base, item), item, tmp, raw_profile=raw)
        text = hotspots.summary(raw) if raw.is_file() else f"no profile: {outcome.error}"
        raw.with_suffix(".md").write_text(f"# {sc.key}: {sc.title}, {tool.label}\n\n{text}\n")
        print(f"\n-- py-spy, {sc.key} / {tool.label} ({outcome.wall_s:.2f} s under py-spy; "
              f"{'ok' if outcome.is_ok else outcome.error}):\n{text}", flush=True)  # fmt: skip


def table(chosen: list[Scenario], rows: list[MediaRow]) -> str:
    """The markdown table: medians, and each row's time over its scenario's reference time."""
    names = ["scenario", "tool", "time s", "rate", "CPU s", "peak RSS MiB", "time ÷ ref"]
    names += ["output", "runs ok"]
    lines = ["| " + " | ".join(names) + " |", "| --- | --- |" + " ---: |" * 5 + " --- | ---: |"]
    for sc in chosen:
        ref = _median(rows, sc.key, sc.reference)
        lines += [_line(r, ref) for r in rows if r.row.scenario == sc.key]
    return "\n".join(lines) + "\n"


def _line(mrow: MediaRow, ref_s: float | None) -> str:
    row = mrow.row
    count = f"{len(row.ok_runs())}/{len(row.runs)}"
    wall = row.median_wall_s()
    if row.skipped or wall is None:
        why = row.skipped or report.failures([row]).splitlines()[0][:160].replace("|", "/")
        state = "skipped" if row.skipped else "FAILED"
        return f"| {row.scenario} | {row.label} | {state} | {why} | | | | | {count} |"
    good = row.ok_runs()
    cpu = statistics.median(r.cpu_s for r in good)
    rss = statistics.median(r.peak_rss_mib for r in good)
    label = row.label
    if mrow.inner_s:
        label += f" (own {statistics.median(mrow.inner_s):.2f} s)"
    cells = [row.scenario, label, f"{wall:.2f}", f"{row.work / wall:.1f} MB/s", f"{cpu:.2f}"]
    cells += [f"{rss:.0f}", f"{wall / ref_s:.2f}" if ref_s else "n/a"]
    cells += [", ".join(sorted(mrow.containers)), count]
    return "| " + " | ".join(cells) + " |"


def _median(rows: list[MediaRow], scenario: str, label: str) -> float | None:
    for r in rows:
        if r.row.scenario == scenario and r.row.label == label:
            return r.row.median_wall_s()
    return None


def _verdicts(chosen: list[Scenario], rows: list[MediaRow]) -> str:
    """hauler's time over each peer's, per scenario, with the issue's bar for m1."""
    bars = {"yt-dlp": 0.5}  # issue 10: at most 0.5 x yt-dlp's time; no slower than yt-dlp+aria2c
    lines = []
    for sc in chosen:
        mine = next((r for r in rows if r.row.scenario == sc.key and r.tool.name == "hauler"), None)
        hauler_s = mine.row.median_wall_s() if mine else None
        for peer in (r for r in rows if r.row.scenario == sc.key and r.tool.name != "hauler"):
            peer_s = peer.row.median_wall_s()
            if hauler_s is None or peer_s is None:
                continue
            ratio = hauler_s / peer_s
            bar = bars.get(peer.row.label, 1.0) if sc.key == "m1" else None
            verdict = (
                "" if bar is None else f" (bar ≤ {bar:g}: {'met' if ratio <= bar else 'NOT met'})"
            )
            lines.append(f"- {sc.key}: hauler / {peer.row.label} = {ratio:.2f}{verdict}")
    return "\n".join(lines) + "\n"


def _header(meta: dict[str, object], chosen: list[Scenario]) -> str:
    m = dict(meta["machine"])  # type: ignore[call-overload]
    versions = dict(meta["versions"])  # type: ignore[call-overload]
    lines = [
        f"# hauler media benchmark, {meta['date_utc']}",
        "",
        f"- machine: nproc {m['nproc']}, {m['cpu']}, {m['kernel']}, "
        f"load at start {m['loadavg_at_start']}",
        f"- hauler under test: {meta['commit']}",
        f"- median of {meta['repeat']} run(s) per tool, tools interleaved; "
        "origin nginx on 127.0.0.1",
        f"- downloads written under {meta['download_dir']}",
    ]  # fmt: skip
    lines += [f"- {s.key}: {s.title}" for s in chosen]
    lines += [f"- check, {k}: {v}" for k, v in dict(meta["checks"]).items()]  # type: ignore[call-overload]
    # hauler's own line is the commit above; curl and wget take no part here.
    lines += [f"- {k}: {v}" for k, v in versions.items() if k not in ("hauler", "curl", "wget")]
    lines += ["", "time = median wall s (spawn to exit); rate = source bytes / time; "
              "time ÷ ref = time over the scenario's first row's (< 1 is faster); own = "
              "hauler's --json elapsed_s (without Python's start-up); output = ffprobe's "
              "container (file ext).", ""]  # fmt: skip
    return "\n".join(lines)


def _write(
    stamp: str, text: str, failed: str, rows: list[MediaRow], meta: dict[str, object]
) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    md_path = OUT / f"media-{stamp}.md"
    md_path.write_text(text + ("\n### Failed runs\n" + failed + "\n" if failed else ""))
    data = {**meta, "rows": [_row_json(r) for r in rows]}
    md_path.with_suffix(".json").write_text(json.dumps(data, indent=2))
    return md_path


def _row_json(mrow: MediaRow) -> dict[str, object]:
    row = mrow.row
    return {
        "scenario": row.scenario,
        "tool": row.label,
        "skipped": row.skipped,
        "bytes": row.work * 1e6,
        "median_wall_s": row.median_wall_s(),
        "hauler_elapsed_s": mrow.inner_s,
        "outputs": sorted(mrow.containers),
        "runs": [asdict(r) for r in row.runs],
    }


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"total {time.monotonic() - started:.0f} s")
    sys.exit(code)
