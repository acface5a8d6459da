"""Real web servers from Debian's packages, in their default configurations, on loopback.

Each server is started from its package's own configuration file, read from /etc and changed
only where a test must: the port (a free one on 127.0.0.1), the document root, the pid and log
paths. Everything else (modules, sendfile, keep-alive, gzip, ETag rules, the user the workers run
as) is the package's default. The config file is stripped of comments and each change is a
replacement that must match exactly once, so a Debian update that moves a default makes these
fixtures fail loudly instead of drifting.

The document root is a ``tempfile.mkdtemp`` directory opened to everyone (0755) because the
servers' workers run as ``www-data``, as the packages have them; pytest's own tmp directories
are 0700.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.redis_server import free_port

KIB = 1024
MIB = 1024 * KIB
BIG_NAME = "big.bin"
BIG_SIZE = 48 * MIB
SMALL_COUNT = 300
SMALL_MIN, SMALL_MAX = 1 * KIB, 200 * KIB
SEED = 20261201
FILES_MTIME = 1_700_000_000  # 2023-11-14, fixed: same validators every run
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken between choosing it and the server's bind
IS_ROOT = os.geteuid() == 0


# --- the files served -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedFiles:
    """A document root of deterministic files and their sha256."""

    root: Path
    sha256: dict[str, str]

    @property
    def small_names(self) -> list[str]:
        """The 300 small files' names, in a stable order."""
        return sorted(name for name in self.sha256 if name != BIG_NAME)


def small_sizes(rng: random.Random) -> list[int]:
    """300 sizes: one empty file, one of exactly 1 byte, the rest 1 KiB..200 KiB."""
    return [0, 1] + [rng.randint(SMALL_MIN, SMALL_MAX) for _ in range(SMALL_COUNT - 2)]


def make_files(root: Path) -> ServedFiles:
    """Write the 48 MiB file and the 300 small ones (world-readable) into ``root``."""
    rng = random.Random(SEED)
    contents = {BIG_NAME: rng.randbytes(BIG_SIZE)}
    for index, size in enumerate(small_sizes(rng)):
        contents[f"small-{index:03d}.bin"] = rng.randbytes(size)
    digests = {}
    for name, data in contents.items():
        path = root / name
        path.write_bytes(data)
        path.chmod(0o644)
        # Files as they usually are: older than a second. Apache marks the ETag of a file
        # modified within the current second weak (W/"..."), then strong a second later.
        os.utime(path, (FILES_MTIME, FILES_MTIME))
        digests[name] = hashlib.sha256(data).hexdigest()
    return ServedFiles(root, digests)


def open_directory(prefix: str) -> Path:
    """A fresh directory in the system temp dir that ``www-data`` can read (0755)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# --- editing a package's configuration --------------------------------------------------------


def without_comments(text: str) -> str:
    """The config without its comment lines and blank lines (what the server actually reads)."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    return "\n".join(lines) + "\n"


def replace_once(text: str, pattern: str, replacement: str) -> str:
    """Replace the one line matching ``pattern`` (a regex); fail when it is not exactly one."""
    regex = re.compile(pattern, re.MULTILINE)
    found = len(regex.findall(text))
    if found != 1:
        raise AssertionError(f"the package default changed: {pattern!r} matched {found} times")
    return regex.sub(lambda _match: replacement, text)


def package_config(path: str) -> str:
    """The package's configuration file as shipped, without comments."""
    return without_comments(Path(path).read_text())


# --- a running server -------------------------------------------------------------------------


@dataclass
class RealServer:
    """One real server process serving ``files`` on ``127.0.0.1:port``."""

    name: str
    port: int
    files: ServedFiles
    workdir: Path
    process: subprocess.Popen[bytes]
    headers: dict[str, str] = field(default_factory=dict)

    def url(self, name: str) -> str:
        """The URL of a served file."""
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def access_log(self) -> Path | None:
        """Where the default configuration logs requests (lighttpd's logs none by default)."""
        return ACCESS_LOGS[self.name](self.workdir)

    def count_requests(self, name: str, status: int) -> int:
        """Requests for ``name`` answered ``status``, from the server's access log."""
        log = self.access_log
        assert log is not None, f"{self.name} keeps no access log in its default configuration"
        lines = log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if f'"GET /{name} ' in line and f'" {status} ' in line)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within a bound."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


def response_headers(port: int, name: str) -> tuple[int, dict[str, str]]:
    """Status and headers of a plain ``GET /name`` (the body is not read)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", f"/{name}")
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """True once the server answers on ``port``; False when it exited (bounded in time)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait(timeout=STOP_TIMEOUT_S)
    raise AssertionError(
        f"server did not answer on {port} within {START_TIMEOUT_S} s: {_tail(log)}"
    )


def _tail(log: Path) -> str:
    """The end of a server's startup output, for an assertion message."""
    texts = [p.read_text(errors="replace")[-2000:] for p in log.parent.glob("*.log") if p.is_file()]
    return " | ".join(t.strip() for t in texts if t.strip()) or "(no output)"


Command = Callable[[int, ServedFiles, Path], tuple[list[str], dict[str, str]]]


def start_server(name: str, command: Command, files: ServedFiles) -> RealServer:
    """Start ``command`` on a free port (again on another port if that one was taken)."""
    for _attempt in range(START_ATTEMPTS):
        port = free_port()
        workdir = open_directory(f"hauler-{name}-")
        argv, env = command(port, files, workdir)
        log = workdir / "startup.log"
        with log.open("wb") as out:
            # A session of its own: the terminal's signals (Ctrl-C; SIGWINCH on a resize, which
            # is Apache's graceful-stop) go to pytest, not to the servers.
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        if _wait_ready(process, port, log):
            return RealServer(name, port, files, workdir, process)
        output = _tail(log)
        shutil.rmtree(workdir, ignore_errors=True)
        if "in use" not in output:
            raise AssertionError(f"{name} did not start: {output}")
    raise AssertionError(f"{name}: no free port after {START_ATTEMPTS} attempts")


def base_env() -> dict[str, str]:
    """The environment for a server: the test's, with sbin on PATH."""
    env = dict(os.environ)
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
    return env


# --- nginx ------------------------------------------------------------------------------------


def nginx_config(port: int, root: Path, workdir: Path) -> str:
    """/etc/nginx/nginx.conf with the default site inlined; port, root, pid and logs moved."""
    text = package_config("/etc/nginx/nginx.conf")
    site = package_config("/etc/nginx/sites-available/default")
    site = replace_once(site, r"^\s*listen 80 default_server;$", f"listen 127.0.0.1:{port};")
    site = replace_once(site, r"^\s*listen \[::\]:80 default_server;\n", "")
    site = replace_once(site, r"^\s*root /var/www/html;$", f"root {root};")
    text = replace_once(text, r"^pid .*;$", f"pid {workdir}/nginx.pid;")
    text = replace_once(text, r"^error_log .*;$", f"error_log {workdir}/error.log;")
    text = replace_once(text, r"^\s*access_log .*;$", f"access_log {workdir}/access.log;")
    if not IS_ROOT:
        text = replace_once(text, r"^user .*;$", "")
    return replace_once(text, r"^\s*include /etc/nginx/sites-enabled/\*;$", site)


def nginx_command(port: int, files: ServedFiles, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """``nginx -c CONF -g 'daemon off;'`` (foreground, as a supervisor runs it)."""
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(port, files.root, workdir))
    argv = ["nginx", "-c", str(conf), "-e", str(workdir / "error.log"), "-g", "daemon off;"]
    return argv, base_env()


# --- Apache -----------------------------------------------------------------------------------


def apache_config(port: int, root: Path, workdir: Path) -> str:
    """/etc/apache2/apache2.conf (its enabled modules and conf-enabled included), with ports.conf
    replaced by one loopback Listen and the default site's VirtualHost pointed at ``root``."""
    text = package_config("/etc/apache2/apache2.conf")
    site = package_config("/etc/apache2/sites-available/000-default.conf")
    site = replace_once(site, r"^<VirtualHost \*:80>$", f"<VirtualHost 127.0.0.1:{port}>")
    site = replace_once(site, r"^\s*DocumentRoot /var/www/html$", f"DocumentRoot {root}")
    # The default <Directory /var/www/> grant, for the new document root.
    www = re.search(r"^<Directory /var/www/>\n.*?^</Directory>$", text, re.M | re.S)
    assert www is not None, "the package default changed: no <Directory /var/www/>"
    grant = www.group(0).replace("<Directory /var/www/>", f"<Directory {root}/>")
    text = replace_once(text, r"^Include ports.conf$", f"Listen 127.0.0.1:{port}")
    return replace_once(text, r"^IncludeOptional sites-enabled/\*.conf$", grant + "\n" + site)


def apache_command(
    port: int, files: ServedFiles, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    """``apache2 -d /etc/apache2 -f CONF -DFOREGROUND`` with /etc/apache2/envvars' variables."""
    conf = workdir / "apache2.conf"
    conf.write_text(apache_config(port, files.root, workdir))
    for sub in ("run", "lock", "log"):
        (workdir / sub).mkdir()
    env = base_env() | {
        "APACHE_RUN_USER": "www-data",
        "APACHE_RUN_GROUP": "www-data",
        "APACHE_PID_FILE": str(workdir / "run" / "apache2.pid"),
        "APACHE_RUN_DIR": str(workdir / "run"),
        "APACHE_LOCK_DIR": str(workdir / "lock"),
        "APACHE_LOG_DIR": str(workdir / "log"),
        "LANG": "C",
    }
    argv = ["apache2", "-d", "/etc/apache2", "-f", str(conf), "-DFOREGROUND"]
    return argv, env


# --- lighttpd ---------------------------------------------------------------------------------


def lighttpd_config(port: int, root: Path, workdir: Path) -> str:
    """/etc/lighttpd/lighttpd.conf with port (bound to 127.0.0.1), root, pid and log moved; the
    IPv6 listener the package adds on the same port (use-ipv6.pl) is left out: loopback only."""
    text = package_config("/etc/lighttpd/lighttpd.conf")
    text = replace_once(text, r"^server\.document-root\s*=.*$", f'server.document-root = "{root}"')
    log = f"{workdir}/log/error.log"
    text = replace_once(text, r"^server\.errorlog\s*=.*$", f'server.errorlog = "{log}"')
    text = replace_once(
        text, r"^server\.pid-file\s*=.*$", f'server.pid-file = "{workdir}/lighttpd.pid"'
    )
    text = replace_once(
        text, r"^server\.port\s*=.*$", f'server.port = {port}\nserver.bind = "127.0.0.1"'
    )
    text = replace_once(text, r"^include_shell \"/usr/share/lighttpd/use-ipv6.pl.*$", "")
    if not IS_ROOT:
        text = replace_once(text, r"^server\.username\s*=.*$", "")
        text = replace_once(text, r"^server\.groupname\s*=.*$", "")
    return text


def lighttpd_command(
    port: int, files: ServedFiles, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    """``lighttpd -D -f CONF`` (foreground)."""
    conf = workdir / "lighttpd.conf"
    conf.write_text(lighttpd_config(port, files.root, workdir))
    # lighttpd opens its error log after it has become www-data.
    (workdir / "log").mkdir()
    if IS_ROOT:
        shutil.chown(workdir / "log", "www-data", "www-data")
    return ["lighttpd", "-D", "-f", str(conf)], base_env()


# --- Python's http.server ---------------------------------------------------------------------


def http_server_command(
    port: int, files: ServedFiles, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    """``python -m http.server PORT --bind 127.0.0.1 --directory ROOT``, nothing else."""
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return [*argv, "--directory", str(files.root)], base_env()


COMMANDS: dict[str, Command] = {
    "nginx": nginx_command,
    "apache": apache_command,
    "lighttpd": lighttpd_command,
    "http.server": http_server_command,
}
ACCESS_LOGS: dict[str, Callable[[Path], Path | None]] = {
    "nginx": lambda workdir: workdir / "access.log",
    "apache": lambda workdir: workdir / "log" / "access.log",
    "lighttpd": lambda workdir: None,
    "http.server": lambda workdir: workdir / "startup.log",  # it logs requests to stderr
}
BINARIES = {"nginx": "nginx", "apache": "apache2", "lighttpd": "lighttpd", "http.server": None}
