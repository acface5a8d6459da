"""The command line each compared tool gets, for one big file or for a list of small files.

Every tool runs without its config files, with quiet output, into a fresh empty directory; the
reasons for each option are in bench/README.md.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from runner import Command

REPO = Path(__file__).resolve().parent.parent

# aria2c: no config/netrc; fresh files, no renaming, no pre-allocation pass (prealloc writes the
# whole file before downloading); no periodic control-file saves (each one is a write + fsync +
# rename; 3 fsyncs per small file); quiet console; no per-download result table.
ARIA2_COMMON = [
    "--no-conf",
    "--no-netrc=true",
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
    "--continue=false",
    "--file-allocation=none",
    "--auto-save-interval=0",
    "--console-log-level=error",
    "--summary-interval=0",
    "--show-console-readout=false",
    "--download-result=hide",
]
CURL_COMMON = ["curl", "-q", "--silent", "--show-error", "--fail"]
WGET_COMMON = ["wget", "--no-config", "--quiet"]
WGET_URLS_PER_PROCESS = 16  # each wget reuses its keep-alive connection for this many files


@dataclass(frozen=True, slots=True)
class Job:
    """What to download: the URLs, where, with how many files in parallel and connections each."""

    urls: list[str]
    dest: Path
    list_file: Path
    parallel: int
    connections: int
    scratch: Path


@dataclass(frozen=True, slots=True)
class Tool:
    """One row of the comparison: a label, the tool, and connections per file for big files."""

    label: str
    name: str
    connections: int = 1
    is_extra: bool = False
    # aria2c only: keep its default periodic control-file saves (what a user gets out of the box).
    keeps_autosave: bool = False
    # hauler-worker only: the job store the queue lives in ("sqlite" or "redis").
    store: str = "sqlite"


# Set by transfer_bench.py when it has started a redis-server for the worker rows.
REDIS_URL_ENV = "HAULER_BENCH_REDIS_URL"
# The venv whose hauler is measured (transfer_bench.py --venv); this checkout's .venv by default.
VENV_ENV = "HAULER_BENCH_VENV"


def hauler_venv() -> Path:
    """The venv that holds the hauler under test (its interpreter is part of what is measured)."""
    return Path(os.environ.get(VENV_ENV) or REPO / ".venv").absolute()


def hauler_bin() -> Path:
    """The hauler console script of the venv under test."""
    return hauler_venv() / "bin" / "hauler"


def availability(name: str) -> str | None:
    """None when tool ``name`` can run here, else why not."""
    if name in ("hauler", "hauler-worker"):
        return _hauler_availability()
    if name == "wget" and shutil.which("xargs") is None:
        return "xargs not found"
    return None if shutil.which(name) else f"{name} not installed"


def command(tool: Tool, job: Job) -> Command:
    """The invocation of ``tool`` for ``job`` (one URL: a big file; several: small files)."""
    builders = {
        "aria2c": _aria2c,
        "curl": _curl,
        "wget": _wget,
        "hauler": _hauler,
        "hauler-worker": _hauler_worker,
    }
    return builders[tool.name](tool, job)


def _aria2c(tool: Tool, job: Job) -> Command:
    common = [o for o in ARIA2_COMMON if not (tool.keeps_autosave and o.startswith("--auto-save"))]
    if len(job.urls) == 1:
        n = str(tool.connections)
        argv = ["aria2c", "-x", n, "-s", n, "-k", "1M", *common, "-d", str(job.dest)]
        return Command([*argv, job.urls[0]], {"HOME": str(job.scratch)})
    argv = ["aria2c", "-j", str(job.parallel), "-x", "1", *common, "-d", str(job.dest)]
    return Command([*argv, "-i", str(job.list_file)], {"HOME": str(job.scratch)})


def _curl(tool: Tool, job: Job) -> Command:
    env = {"HOME": str(job.scratch)}
    if len(job.urls) == 1:
        return Command([*CURL_COMMON, "-O", "--output-dir", str(job.dest), job.urls[0]], env)
    parallel = ["--parallel", "--parallel-max", str(job.parallel), "--parallel-immediate"]
    names = ["--remote-name-all", "--output-dir", str(job.dest)]
    return Command([*CURL_COMMON, *parallel, *names, *job.urls], env)


def _wget(tool: Tool, job: Job) -> Command:
    env = {"HOME": str(job.scratch)}
    if len(job.urls) == 1:
        return Command([*WGET_COMMON, "-P", str(job.dest), job.urls[0]], env)
    xargs = ["xargs", "-P", str(job.parallel), "-n", str(WGET_URLS_PER_PROCESS)]
    return Command([*xargs, *WGET_COMMON, "-P", str(job.dest)], env, stdin_path=job.list_file)


def _hauler_env(job: Job) -> dict[str, str]:
    scratch = str(job.scratch)
    # A private data/config dir per run: no download archive or store state from earlier runs.
    return {
        "HOME": scratch,
        "XDG_DATA_HOME": f"{scratch}/data",
        "XDG_CONFIG_HOME": f"{scratch}/config",
        "XDG_CACHE_HOME": f"{scratch}/cache",
        "XDG_STATE_HOME": f"{scratch}/state",
    }


def _hauler_worker(tool: Tool, job: Job) -> Command:
    """What a queue user runs: add the list to a fresh store, then one worker drains it."""
    env = _hauler_env(job)
    if tool.store == "redis":
        # A new namespace per run: the store's dedupe keys would skip every URL of a second run.
        namespace = "bench" + uuid.uuid4().hex[:12]
        env["HAULER_STORE"] = f"{os.environ[REDIS_URL_ENV]}?namespace={namespace}"
    else:
        env["HAULER_STORE"] = f"sqlite:///{job.scratch}/state.db"
    hauler = str(hauler_bin())
    script = (
        f'"{hauler}" add -i "{job.list_file}" --json >/dev/null && '
        f'exec "{hauler}" worker -o "{job.dest}" -j {job.parallel} --mode drain --json >/dev/null'
    )
    return Command(["bash", "-c", script], env)


def _hauler(tool: Tool, job: Job) -> Command:
    env = _hauler_env(job)
    argv = [str(hauler_bin()), "get", "-d", str(job.dest), "--json"]
    if len(job.urls) == 1:
        return Command([*argv, "-x", str(tool.connections), job.urls[0]], env)
    return Command([*argv, "-j", str(job.parallel), "-x", "1", "-i", str(job.list_file)], env)


@functools.cache
def _hauler_availability() -> str | None:
    if not hauler_bin().exists():
        return f"{hauler_bin()} missing: run scripts/bootstrap.sh (VENV=DIR for another venv)"
    probe = subprocess.run(
        [str(hauler_bin()), "get", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0 or "-i" not in probe.stdout:
        return "`hauler get` is not implemented yet in this checkout"
    _compile_bytecode()
    return None


def _compile_bytecode() -> None:
    """Compile hauler's sources to .pyc once, as an installed package has them.

    An editable install has none, and with PYTHONDONTWRITEBYTECODE set (as on this machine) every
    run would compile ~50 modules from source: ~50 ms that no installed hauler pays.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [str(hauler_venv() / "bin" / "python"), "-m", "compileall", "-q", str(REPO / "src")],
        check=True,
        env=env,
        timeout=120,
    )


def versions() -> dict[str, str]:
    """First line of each tool's version output, for the report."""
    probes = {
        "aria2c": ["aria2c", "--version"],
        "curl": ["curl", "--version"],
        "wget": ["wget", "--version"],
        "nginx": ["nginx", "-v"],
        "hauler": ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"],
        "python": [str(hauler_venv() / "bin" / "python"), "-c", _DESCRIBE_PYTHON],
    }
    return {name: _first_line(argv) for name, argv in probes.items()}


# The interpreter hauler runs on is part of what is measured: see "Which Python" in README.md.
_DESCRIBE_PYTHON = "import sys; print(f'Python {sys.version.split()[0]} from {sys.base_prefix}')"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"
