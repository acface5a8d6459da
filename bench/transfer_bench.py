"""Transfer benchmark: hauler against aria2c, curl and wget, on one local nginx, in one run.

    python bench/transfer_bench.py [--only a,b,c] [--tools aria2c,curl,wget,hauler]
                                   [--repeat N] [--quick]

Scenarios (bench/README.md has the details):
  a  one big file, each connection capped (physical limit = connections x cap)
  b  one big file, uncapped: CPU-bound on loopback
  c  many 64 KiB files, 64 in parallel: files/s
  d  the files of c, each answer held 40 ms (a delaying proxy): what a distant origin costs

Files come from a cached deterministic corpus in bench/out/corpus; every download goes to a fresh
directory, is checked by sha256 against the corpus and deleted. The table (medians of --repeat
runs) is printed and written to bench/out/results-<stamp>.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures

import corpus
import delay_proxy
import hotspots
import origin
import report
import runner
import tools
from corpus import CorpusFile, FileWant
from report import Row
from tools import Job, Tool

OUT = Path(__file__).resolve().parent / "out"
MIB = 1 << 20
CAP_TOLERANCE = 0.05
ARIA2_MAX_CONNECTIONS = 16
CAP_CHECK_TIMEOUT_S = 60.0
# The round trip of a distant origin (scenario d), added by bench/delay_proxy.py.
DELAY_S = 0.040


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each scenario is: full by default, small with --quick."""

    capped_bytes: int
    uncapped_bytes: int
    small_count: int
    small_bytes: int
    cap_check_bytes: int
    repeat: int


FULL = Sizes(256 * MIB, 1024 * MIB, 2000, 64 * 1024, 32 * MIB, repeat=3)
# The cap check keeps 32 MiB even in quick mode: shorter transfers overshoot nginx's cap
# (8 MiB measured up to +32 %), which would fail the check for the wrong reason.
QUICK = Sizes(64 * MIB, 256 * MIB, 400, 64 * 1024, 32 * MIB, repeat=1)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One comparison: the files to fetch, from which port, how, and how to express the rate."""

    key: str
    title: str
    files: list[FileWant]
    cap_bps: int | None
    parallel: int
    tools: list[Tool]
    timeout_s: float
    delay_s: float = 0.0  # each answer held this long by a proxy in front of the origin

    @property
    def is_capped(self) -> bool:
        """Served from the port with a per-connection rate cap."""
        return self.cap_bps is not None

    @property
    def is_many(self) -> bool:
        """Many small files (rate in files/s) rather than one big file (MB/s)."""
        return len(self.files) > 1


@dataclass(frozen=True, slots=True)
class Options:
    """What this invocation runs, resolved from the command line."""

    scenarios: list[Scenario]
    tools: set[str]
    sizes: Sizes
    repeat: int
    cap_bps: int
    nginx_workers: int
    download_root: Path
    profile_prefix: str | None
    is_quick: bool


def scenarios(sizes: Sizes, cap_bps: int) -> list[Scenario]:
    """The three scenarios of the issue, sized by ``sizes``."""
    x16 = ARIA2_MAX_CONNECTIONS
    big_tools = [
        Tool(f"aria2c -x{x16} -s{x16} -k1M", "aria2c", x16),
        Tool(f"hauler -x{x16}", "hauler", x16),
        Tool("curl", "curl"),
        Tool("wget", "wget"),
    ]
    extra = Tool("hauler -x32", "hauler", 32, is_extra=True)
    many_tools = [
        Tool("aria2c -j64 -x1", "aria2c"),
        Tool("aria2c -j64 -x1, default autosave", "aria2c", is_extra=True, keeps_autosave=True),
        Tool("hauler -j64", "hauler"),
        Tool("hauler add + worker -j64, SQLite", "hauler-worker", is_extra=True),
        Tool("hauler add + worker -j64, Redis", "hauler-worker", is_extra=True, store="redis"),
        Tool("curl --parallel-max 64", "curl"),
        Tool("wget via xargs -P64", "wget"),
    ]
    single_conn_s = sizes.capped_bytes / cap_bps
    cap_mb = cap_bps / 1e6
    return [
        Scenario(
            "a", f"one {sizes.capped_bytes // MIB} MiB file, {cap_mb:g} MB/s per connection",
            [corpus.big_file(sizes.capped_bytes)], cap_bps, 1, [*big_tools, extra],
            timeout_s=2 * single_conn_s + 60,
        ),
        Scenario(
            "b", f"one {sizes.uncapped_bytes // MIB} MiB file, uncapped",
            [corpus.big_file(sizes.uncapped_bytes)], None, 1, big_tools, timeout_s=300,
        ),
        Scenario(
            "c", f"{sizes.small_count} files of {sizes.small_bytes // 1024} KiB, 64 in parallel",
            corpus.small_files(sizes.small_count, sizes.small_bytes), None, 64, many_tools,
            timeout_s=300,
        ),
        Scenario(
            "d", f"the files of c, 64 in parallel, each answer held {DELAY_S * 1000:g} ms",
            corpus.small_files(sizes.small_count, sizes.small_bytes), None, 64,
            [t for t in many_tools if not t.is_extra], timeout_s=300, delay_s=DELAY_S,
        ),
    ]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c,d", help="scenarios to run, e.g. a,c")
    parser.add_argument(
        "--tools", default="aria2c,hauler,hauler-worker,curl,wget", help="tools to run"
    )
    parser.add_argument("--repeat", type=int, help="runs per tool (median reported); default 3")
    parser.add_argument("--quick", action="store_true", help="small files, 1 run: a smoke test")
    parser.add_argument("--cap-mbps", type=float, default=4.0, help="per-connection cap, MB/s")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one extra hauler run per scenario under py-spy: hot spots to bench/out/profile-*",
    )
    parser.add_argument(
        "--download-dir",
        type=Path,
        help="where downloads go (default bench/out/work); /dev/shm takes the disk out",
    )
    parser.add_argument("--nginx-workers", type=int, default=1, choices=(1, 2))
    parser.add_argument(
        "--venv",
        type=Path,
        help="venv whose hauler is measured (default .venv); see README: Which Python",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios and write the report; 1 when a run failed or setup broke."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args = parse_args(argv)
    if args.venv:
        os.environ[tools.VENV_ENV] = str(args.venv.absolute())
    opts = options(args, stamp)
    meta = _meta(opts)
    _print_meta(meta)
    try:
        rows = _run(opts, meta)
    except (corpus.CorpusError, origin.OriginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    md_path = report.write(OUT, stamp, _header(meta, opts.scenarios), rows, meta)
    print("\n" + report.table(rows))
    if failed := report.failures(rows):
        print("Failed runs:\n" + failed)
    print(f"written: {md_path} and {md_path.with_suffix('.json')}")
    return 1 if failed else 0


def options(args: argparse.Namespace, stamp: str) -> Options:
    """The run's options from the parsed command line; ``stamp`` names profile files."""
    sizes = QUICK if args.quick else FULL
    cap_bps = int(args.cap_mbps * 1e6)
    return Options(
        scenarios=[s for s in scenarios(sizes, cap_bps) if s.key in args.only.split(",")],
        tools=set(args.tools.split(",")),
        sizes=sizes,
        repeat=args.repeat or sizes.repeat,
        cap_bps=cap_bps,
        nginx_workers=args.nginx_workers,
        download_root=(args.download_dir or OUT / "work").resolve(),
        profile_prefix=f"profile-{stamp}" if args.profile else None,
        is_quick=args.quick,
    )


def _meta(opts: Options) -> dict[str, object]:
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "versions": tools.versions(),
        "mode": "quick" if opts.is_quick else "full",
        "repeat": opts.repeat,
        "cap_bps": opts.cap_bps,
        "nginx_workers": opts.nginx_workers,
        "download_dir": str(opts.download_root),
    }


def _run(opts: Options, meta: dict[str, object]) -> list[Row]:
    cap_file = corpus.big_file(opts.sizes.cap_check_bytes)
    wants = [f for s in opts.scenarios for f in s.files] + [cap_file]
    reserve = 2 * max(f.size for f in wants) + 512 * MIB  # a download and a stray .part
    opts.download_root.mkdir(parents=True, exist_ok=True)
    corpus.check_disk(opts.download_root, reserve)
    files = corpus.ensure(OUT / "corpus", wants, reserve_bytes=reserve)
    (OUT / "work").mkdir(parents=True, exist_ok=True)
    cfg = origin.OriginConfig(OUT / "corpus", opts.cap_bps, workers=opts.nginx_workers)
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(dir=OUT / "work") as nginx_tmp,
        tempfile.TemporaryDirectory(dir=opts.download_root) as dl_tmp,
        origin.running(cfg, Path(nginx_tmp)) as o,
        _redis_for_workers(opts, Path(nginx_tmp) / "redis"),
    ):
        for sc in opts.scenarios:
            cap_problem = _check_cap(o, cap_file, opts.cap_bps, meta) if sc.is_capped else None
            with _front(sc, o, Path(nginx_tmp)) as base:
                rows += _run_scenario(
                    sc,
                    base,
                    files=files,
                    tmp=Path(dl_tmp),
                    repeat=opts.repeat,
                    wanted_tools=opts.tools,
                    skip_reason=cap_problem,
                )
                if opts.profile_prefix and "hauler" in opts.tools and cap_problem is None:
                    _profile_hauler(
                        sc, base, files=files, tmp=Path(dl_tmp), prefix=opts.profile_prefix
                    )
    return rows


@contextlib.contextmanager
def _front(sc: Scenario, o: origin.Origin, tmp: Path) -> Iterator[str]:
    """The base URL the scenario's tools fetch from: nginx's capped or uncapped port, or the
    delaying proxy in front of the uncapped one for the length of the scenario."""
    if not sc.delay_s:
        yield o.capped_base if sc.is_capped else o.uncapped_base
        return
    with delay_proxy.running(o.uncapped_base, sc.delay_s, tmp / f"delay-{sc.key}.log") as base:
        yield base


@contextlib.contextmanager
def _redis_for_workers(opts: Options, data_dir: Path) -> Iterator[None]:
    """A redis-server (AOF, fsync every second) for the queue rows, when they run."""
    if "hauler-worker" not in opts.tools or shutil.which("redis-server") is None:
        yield
        return
    from tests.fixtures.redis_server import start_redis

    server = start_redis(data_dir, fsync="everysec")
    os.environ[tools.REDIS_URL_ENV] = server.url
    try:
        yield
    finally:
        os.environ.pop(tools.REDIS_URL_ENV, None)
        server.stop()


def _check_cap(
    o: origin.Origin, cap_file: FileWant, cap_bps: int, meta: dict[str, object]
) -> str | None:
    """Measure one capped connection; a reason to skip the scenario when the cap does not hold."""
    rate = origin.measured_rate_bps(f"{o.capped_base}/{cap_file.name}", CAP_CHECK_TIMEOUT_S)
    drift = rate / cap_bps - 1
    meta["cap_check"] = {"file_bytes": cap_file.size, "measured_bps": rate, "drift": drift}
    print(f"cap check: {cap_file.size // MIB} MiB over one connection at {rate / 1e6:.3f} MB/s "
          f"(cap {cap_bps / 1e6:.3f} MB/s, {drift:+.1%})", flush=True)  # fmt: skip
    if drift > CAP_TOLERANCE:
        return f"cap does not hold: measured {rate / 1e6:.2f} MB/s > cap {cap_bps / 1e6:.2f}"
    if drift < -CAP_TOLERANCE:
        print("warning: measured rate is well under the cap: the machine is busy", flush=True)
    return None


def _run_scenario(
    sc: Scenario,
    base: str,
    *,
    files: dict[str, CorpusFile],
    tmp: Path,
    repeat: int,
    wanted_tools: set[str],
    skip_reason: str | None,
) -> list[Row]:
    urls, list_file, expected = _inputs(sc, base, files, tmp)
    picked = [t for t in sc.tools if t.name in wanted_tools]
    rows = [_row(sc, t, skip_reason or tools.availability(t.name)) for t in picked]
    runnable = [(row, tool) for row, tool in zip(rows, picked, strict=True) if not row.skipped]
    print(f"\n== {sc.key}: {sc.title}", flush=True)
    for rep in range(repeat):
        shift = rep % max(len(runnable), 1)  # rotate the order so drift hits every tool alike
        for row, tool in runnable[shift:] + runnable[:shift]:
            job_dir = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{sc.key}-{tool.name}-"))
            outcome = _measure(
                sc, tool, urls=urls, list_file=list_file, job_dir=job_dir, expected=expected
            )
            row.runs.append(outcome)
            _print_run(sc, row, rep, repeat, outcome)
    return rows


def _profile_hauler(
    sc: Scenario, base: str, *, files: dict[str, CorpusFile], tmp: Path, prefix: str
) -> None:
    """One unmeasured run of each hauler row under py-spy; print and save its hot spots."""
    if not hotspots.py_spy_bin().exists():
        print("--profile: py-spy missing: .venv/bin/pip install -e '.[bench]'", flush=True)
        return
    urls, list_file, expected = _inputs(sc, base, files, tmp)
    for tool in (t for t in sc.tools if t.name == "hauler"):
        slug = tool.label.replace(" ", "").replace("-", "")
        raw = OUT / f"{prefix}-{sc.key}-{slug}.txt"
        job_dir = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{sc.key}-profile-"))
        outcome = _measure(
            sc, tool, urls=urls, list_file=list_file, job_dir=job_dir, expected=expected,
            raw_profile=raw,
        )  # fmt: skip
        text = hotspots.summary(raw) if raw.is_file() else f"no profile: {outcome.error}"
        raw.with_suffix(".md").write_text(f"# {sc.key}: {sc.title}, {tool.label}\n\n{text}\n")
        print(f"\n-- py-spy, {sc.key} / {tool.label} ({outcome.wall_s:.2f} s under py-spy; "
              f"{'ok' if outcome.is_ok else outcome.error}):\n{text}", flush=True)  # fmt: skip


def _inputs(
    sc: Scenario, base: str, files: dict[str, CorpusFile], tmp: Path
) -> tuple[list[str], Path, dict[str, CorpusFile]]:
    """The scenario's URLs (under ``base``), its URL list file, and the expected files by
    base name."""
    urls = [f"{base}/{f.name}" for f in sc.files]
    list_file = tmp / f"urls-{sc.key}.txt"
    list_file.write_text("".join(u + "\n" for u in urls))
    return urls, list_file, {Path(f.name).name: files[f.name] for f in sc.files}


def _row(sc: Scenario, tool: Tool, skip_reason: str | None) -> Row:
    # The physical limit of a capped download: its connections times the per-connection cap.
    limit = tool.connections * sc.cap_bps / 1e6 if sc.cap_bps else None
    unit = "files/s" if sc.is_many else "MB/s"
    work = float(len(sc.files)) if sc.is_many else sc.files[0].size / 1e6
    note = ""
    if tool.name == "hauler-worker":
        note = "extra: through the job queue (time includes `hauler add`)"
    elif tool.keeps_autosave:
        note = "extra: aria2c as installed, saving its control file while it works"
    elif tool.is_extra:
        note = "extra: beyond aria2c's 16-connection cap"
    return Row(sc.key, tool.label, unit, work, limit, note=note, skipped=skip_reason)


def _measure(
    sc: Scenario,
    tool: Tool,
    *,
    urls: list[str],
    list_file: Path,
    job_dir: Path,
    expected: dict[str, CorpusFile],
    raw_profile: Path | None = None,
) -> runner.RunOutcome:
    dest, scratch = job_dir / "dl", job_dir / "home"
    dest.mkdir()
    scratch.mkdir()
    job = Job(urls, dest, list_file, sc.parallel, tool.connections, scratch)
    try:
        cmd = tools.command(tool, job)
        if raw_profile is not None:
            cmd = hotspots.wrap(cmd, raw_profile)
        outcome = runner.run_once(cmd, scratch, job_dir / "output.log", sc.timeout_s)
        return runner.verify(outcome, {dest / name: f for name, f in expected.items()})
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def _print_run(sc: Scenario, row: Row, rep: int, repeat: int, outcome: runner.RunOutcome) -> None:
    status = "ok" if outcome.is_ok else f"FAILED: {outcome.error}"
    print(f"[{sc.key}] {rep + 1}/{repeat} {row.label:<28} {outcome.wall_s:8.2f} s  "
          f"cpu {outcome.cpu_s:6.2f} s  rss {outcome.peak_rss_mib:6.0f} MiB  {status}",
          flush=True)  # fmt: skip


def _print_meta(meta: dict[str, object]) -> None:
    print(f"date {meta['date_utc']}  machine {meta['machine']}", flush=True)
    for name, version in dict(meta["versions"]).items():  # type: ignore[call-overload]
        print(f"  {name}: {version}")


def _header(meta: dict[str, object], chosen: list[Scenario]) -> str:
    m = dict(meta["machine"])  # type: ignore[call-overload]
    lines = [
        f"# hauler transfer benchmark, {meta['date_utc']}",
        "",
        f"- machine: nproc {m['nproc']}, {m['cpu']}, {m['kernel']}, "
        f"load at start {m['loadavg_at_start']}",
        f"- mode: {meta['mode']}, median of {meta['repeat']} run(s) per tool",
        f"- origin: nginx, worker_processes {meta['nginx_workers']}, sendfile on, 127.0.0.1 only",
        f"- downloads written under {meta['download_dir']}",
    ]
    if "cap_check" in meta:
        cc = dict(meta["cap_check"])  # type: ignore[call-overload]
        lines.append(
            f"- cap: limit_rate {meta['cap_bps']} B/s per connection, sndbuf 64k; one curl of "
            f"{cc['file_bytes'] // MIB} MiB measured {cc['measured_bps'] / 1e6:.3f} MB/s "
            f"({cc['drift']:+.1%})"
        )
    lines += [f"- {s.key}: {s.title}" for s in chosen]
    lines += [f"- {k}: {v}" for k, v in dict(meta["versions"]).items()]  # type: ignore[call-overload]
    lines += ["", "time = median wall s; rate = work / median time; × aria2c and × limit are "
              "rate ratios (> 1 is faster); limit = connections × cap.", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"total {time.monotonic() - started:.0f} s")
    sys.exit(code)
