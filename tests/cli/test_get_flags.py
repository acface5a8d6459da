"""`hauler get` flags users of aria2c, wget, curl and yt-dlp reach for, end to end: the real
command against the in-process origin."""

from __future__ import annotations

import json
import socket

from tests.cli.process import HaulerRunner
from tests.cli.test_get import KIB, files_under, sha256_of
from tests.transfer.origin import Fault, Origin


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_dir_and_output_name_and_output_as_a_directory(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("a.bin", 100 * KIB)
    url = origin.url("a.bin")
    named = await cli.run("get", "-d", "out", "-o", "sub/name.bin", url)
    assert named.returncode == 0, named.stderr
    assert sha256_of(cli.cwd / "out" / "sub" / "name.bin") == origin.sha256("a.bin")
    (cli.cwd / "existing").mkdir()
    for target, path in (("existing", "existing/a.bin"), ("fresh/", "fresh/a.bin")):
        done = await cli.run("get", "-o", target, url)  # as cp reads it: that directory
        assert done.returncode == 0, done.stderr
        assert sha256_of(cli.cwd / path) == origin.sha256("a.bin")
    alias = await cli.run("get", "--output-dir", "old", url)
    assert alias.returncode == 0, alias.stderr
    assert sha256_of(cli.cwd / "old" / "a.bin") == origin.sha256("a.bin")


async def test_one_name_for_several_urls_is_a_usage_error(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("a.bin", 10 * KIB)
    origin.add("b.bin", 10 * KIB)
    done = await cli.run("get", "-o", "one.bin", origin.url("a.bin"), origin.url("b.bin"))
    assert done.returncode == 2
    assert "'-o'" in done.stderr and "2 URLs" in done.stderr
    assert origin.requests_for("a.bin") == [] and files_under(cli.cwd) == set()


async def test_headers_user_agent_referer_and_cookies_reach_the_origin(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("h.bin", 10 * KIB)
    origin.add("j.bin", 10 * KIB)
    jar = "\t".join(["127.0.0.1", "FALSE", "/", "FALSE", "0", "sid", "c00kieval"])
    (cli.cwd / "cookies.txt").write_text(f"# Netscape HTTP Cookie File\n{jar}\n")
    line = {"url": origin.url("j.bin"), "headers": {"x-trace": "from-the-line"}}
    (cli.cwd / "list.txt").write_text(json.dumps(line) + "\n")
    done = await cli.run(
        "get", "-d", "out", "-H", "X-Trace: from-H", "-H", "Accept: */*",
        "-U", "agent/9", "--referer", "http://ref.example/", "--load-cookies", "cookies.txt",
        "-i", "list.txt", origin.url("h.bin"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plain, from_line = origin.requests_for("h.bin")[0], origin.requests_for("j.bin")[0]
    assert plain.headers["x-trace"] == "from-H"
    assert from_line.headers["x-trace"] == "from-the-line"  # a line's own header wins
    for request in (plain, from_line):
        assert request.headers["user-agent"] == "agent/9"
        assert request.headers["referer"] == "http://ref.example/"
        assert request.headers["cookie"] == "sid=c00kieval"
        assert request.headers["accept"] == "*/*"


async def test_secrets_from_header_and_cookie_options_are_masked(
    origin: Origin, cli: HaulerRunner
) -> None:
    jar = "\t".join(["127.0.0.1", "FALSE", "/", "FALSE", "0", "sid", "c00kieval"])
    (cli.cwd / "cookies.txt").write_text(jar + "\n")
    # The server echoes both secrets in the URL it is asked for: the failure line quotes it.
    url = origin.url("missing-c00kieval-k3yvalue.bin")
    for flags in ([], ["--json"], ["--dry-run"]):
        done = await cli.run(
            "get", *flags, "-d", "out", "-H", "X-Api-Key: k3yvalue",
            "--load-cookies", "cookies.txt", url,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert "missing-" in output, output
        assert "c00kieval" not in output and "k3yvalue" not in output


async def test_bad_header_and_bad_cookie_file_are_usage_errors(cli: HaulerRunner) -> None:
    header = await cli.run("get", "-H", "no colon here", "http://127.0.0.1:9/x")
    assert header.returncode == 2
    assert "'-H'" in header.stderr and "Name: value" in header.stderr
    (cli.cwd / "cookies.txt").write_text("# ok\nexample.com\tTRUE\t/\n")
    cookies = await cli.run("get", "--load-cookies", "cookies.txt", "http://127.0.0.1:9/x")
    assert cookies.returncode == 2
    assert "cookies.txt line 2" in cookies.stderr
    assert "Traceback" not in header.stderr + cookies.stderr


async def test_policies_for_a_taken_name_exclude_each_other(cli: HaulerRunner) -> None:
    done = await cli.run("get", "-n", "-c", "http://127.0.0.1:9/x")
    assert done.returncode == 2
    assert "--no-clobber" in done.stderr and "--continue" in done.stderr
    same = await cli.run("get", "--dry-run", "--force", "--allow-overwrite", "http://h.test/x")
    assert same.returncode == 0, same.stderr  # both mean overwrite


async def test_dry_run_prints_the_plan_and_touches_nothing(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("a.bin", 10 * KIB)
    url = origin.url("a.bin").replace("http://", "http://user:pa55@")
    text = await cli.run("get", "--dry-run", "-d", "out", url, origin.url("b.bin"))
    assert text.returncode == 0, text.stderr
    out = (cli.cwd / "out").resolve()
    assert text.stdout.splitlines() == [
        f"{url.replace('pa55', '***')} -> {out / 'a.bin'}",
        f"{origin.url('b.bin')} -> {out / 'b.bin'}",
    ]
    listing = await cli.run("get", "--dry-run", "--json", "-d", "out", "-o", "x.bin", url)
    assert json.loads(listing.stdout) == [
        {"url": url.replace("pa55", "***"), "path": str(out / "x.bin")}
    ]
    assert origin.log == [] and files_under(cli.cwd) == set()


async def test_quiet_prints_only_errors(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("q.bin", 10 * KIB)
    ok = await cli.run("get", "-q", "-d", "out", origin.url("q.bin"))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    failed = await cli.run("get", "-q", "-d", "out", origin.url("q.bin"), origin.url("no.bin"))
    assert failed.returncode == 4 and failed.stdout == ""
    assert "no.bin" in failed.stderr and "not_found" in failed.stderr


async def test_retries_and_timeout_options_reach_the_engine(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("r.bin", 10 * KIB, faults={1: Fault(status=503), 2: Fault(status=503)})
    refused = await cli.run("get", "-d", "out", "--retries", "1", origin.url("r.bin"))
    assert refused.returncode == 6, refused.stdout  # two 503s, one retry
    origin.add("r2.bin", 10 * KIB, faults={1: Fault(status=503), 2: Fault(status=503)})
    done = await cli.run("get", "-d", "out", "--retries", "2", origin.url("r2.bin"))
    assert done.returncode == 0, done.stderr
    origin.add("slow.bin", 64 * KIB, faults={1: Fault(stall_after=KIB)})
    cut = await cli.run(
        "get", "-d", "out", "--retries", "0", "--timeout", "0.3", origin.url("slow.bin")
    )
    assert cut.returncode == 6
    assert "read timeout" in cut.stderr


async def test_a_retry_says_what_and_why_on_stderr(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("p.bin", 10 * KIB)
    proxy = f"http://127.0.0.1:{closed_port()}"
    done = await cli.run(
        "get", "-d", "out", "--retries", "2", "--proxy", proxy, origin.url("p.bin")
    )
    assert done.returncode == 6
    retries = [line for line in done.stderr.splitlines() if line.startswith("retrying ")]
    assert len(retries) == 2, done.stderr
    assert "proxy" in retries[0] and "refused" in retries[0]
    assert retries[0].endswith("(attempt 2 of 3, next in 0.0 s)")  # FAST_ENV's short backoff
    assert "attempt 3 of 3" in retries[1]
    quiet = await cli.run("get", "-q", "--proxy", proxy, origin.url("p.bin"))
    assert "retrying" not in quiet.stderr


async def test_verbose_shows_info_logs(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("v.bin", 64 * KIB, faults={1: Fault(reset_after=KIB)})
    plain = await cli.run("get", "-d", "a", "-x", "1", origin.url("v.bin"))
    assert plain.returncode == 0, plain.stderr
    assert " INFO " not in plain.stderr
    origin.add("w.bin", 64 * KIB, faults={1: Fault(reset_after=KIB)})
    loud = await cli.run("get", "-v", "-d", "b", "-x", "1", origin.url("w.bin"))
    assert loud.returncode == 0, loud.stderr
    assert " INFO hauler.transfer" in loud.stderr


async def test_every_bad_input_line_is_named_and_nothing_is_fetched(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("good.bin", 10 * KIB)
    lines = [origin.url("good.bin"), "http://h:99999/", "not a url", '{"url": 3}', "http://[::1/x"]
    (cli.cwd / "list.txt").write_text("\n".join(lines) + "\n")
    done = await cli.run("get", "-d", "out", "-i", "list.txt")
    assert done.returncode == 2
    for number in (2, 3, 4, 5):
        assert f"list.txt line {number}:" in done.stderr
    assert "line 1:" not in done.stderr
    assert "Traceback" not in done.stderr
    assert origin.log == [] and files_under(cli.cwd) == {cli.cwd / "list.txt"}
