"""`hauler get` end to end: the real command against the in-process origin."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.cli.process import HaulerRunner
from tests.transfer.origin import Fault, Origin

KIB = 1024
MIB = 1024 * KIB


def sha256_of(path: Path) -> str:
    """The sha256 of a file on disk."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def files_under(root: Path) -> set[Path]:
    """Every regular file below ``root``."""
    return {p for p in root.rglob("*") if p.is_file()}


async def test_several_urls_in_parallel(origin: Origin, cli: HaulerRunner) -> None:
    sizes = {"a.bin": 300 * KIB, "b.bin": 3 * MIB + 7, "c.bin": 1, "d.bin": 2 * MIB}
    for name, size in sizes.items():
        origin.add(name, size)
    urls = [origin.url(name) for name in sizes]
    done = await cli.run("get", "-d", "out", "-j", "3", "-x", "4", *urls)
    assert done.returncode == 0, done.stderr
    for name in sizes:
        assert sha256_of(cli.cwd / "out" / name) == origin.sha256(name)
    assert done.stdout.count("done ") == 4
    assert "4 ok, 0 failed" in done.stdout
    assert "Traceback" not in done.stderr


async def test_json_summary_and_a_404(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("one.bin", 1 * MIB)
    origin.add("two.bin", 2 * MIB + 3)
    urls = [origin.url("one.bin"), origin.url("missing.bin"), origin.url("two.bin")]
    done = await cli.run("get", "--json", "-d", "out", "-j", "2", *urls)
    assert done.returncode == 4  # the one failure is not_found
    summary = json.loads(done.stdout)
    assert (summary["ok"], summary["failed"]) == (2, 1)
    assert summary["bytes"] == 3 * MIB + 3
    one, missing, two = summary["files"]
    assert [f["url"] for f in summary["files"]] == urls
    assert missing["ok"] is False
    assert missing["error"]["class"] == "not_found"
    for record, name in ((one, "one.bin"), (two, "two.bin")):
        assert record["ok"] is True
        assert record["error"] is None
        assert record["size"] == origin.files[name].size
        assert sha256_of(Path(record["path"])) == origin.sha256(name)
        assert Path(record["path"]).resolve() == (cli.cwd / "out" / name).resolve()
    assert "missing.bin" in done.stderr
    assert "not_found" in done.stderr
    assert "Traceback" not in done.stderr


async def test_checksum_ok_and_mismatch(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("sum.bin", 1 * MIB + 11)
    url = origin.url("sum.bin")
    bad = await cli.run("get", "-d", "out", "--checksum", "sha256=" + "0" * 64, url)
    assert bad.returncode == 8  # content_mismatch
    assert "content_mismatch" in bad.stderr
    assert not (cli.cwd / "out" / "sum.bin").exists()
    assert "Traceback" not in bad.stderr
    expected = origin.sha256("sum.bin")
    good = await cli.run("get", "--json", "-d", "out", "--checksum", "sha256=" + expected, url)
    assert good.returncode == 0, good.stderr
    assert sha256_of(cli.cwd / "out" / "sum.bin") == expected
    record = json.loads(good.stdout)["files"][0]
    assert (record["sha256"], record["checksum"]) == (expected, "sha256=" + expected)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-j", "0", "http://127.0.0.1:9/x"], "--parallel"),
        (["-x", "abc", "http://127.0.0.1:9/x"], "--connections"),
        (["--limit-rate", "fast", "http://127.0.0.1:9/x"], "--limit-rate"),
        (["--checksum", "sha256=00", "http://127.0.0.1:9/x"], "--checksum"),
        (
            ["--checksum", "md5=" + "0" * 32, "http://127.0.0.1:9/x", "http://127.0.0.1:9/y"],
            "one URL",
        ),
        (["-i", "no-such-list.txt"], "no-such-list.txt"),
        (["--proxy", "ftp://user:hunter22@127.0.0.1:9", "http://127.0.0.1:9/x"], "--proxy"),
        (["not a url"], "not a URL"),
        ([], "at least one URL"),
    ],
)
async def test_usage_errors_exit_2(cli: HaulerRunner, args: list[str], needle: str) -> None:
    done = await cli.run("get", *args)
    assert done.returncode == 2
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter22" not in done.stderr + done.stdout


async def test_existing_file_is_not_fetched_again_unless_forced(
    origin: Origin, cli: HaulerRunner
) -> None:
    origin.add("keep.bin", 512 * KIB)
    url = origin.url("keep.bin")
    first = await cli.run("get", "-d", "out", url)
    assert first.returncode == 0, first.stderr
    origin.log.clear()
    again = await cli.run("get", "-d", "out", url)
    assert again.returncode == 0, again.stderr
    assert [r for r in origin.requests_for("keep.bin") if r.method == "GET"] == []
    assert "skipped" in again.stdout
    forced = await cli.run("get", "-d", "out", "--force", url)
    assert forced.returncode == 0, forced.stderr
    assert any(r.method == "GET" for r in origin.requests_for("keep.bin"))
    assert sha256_of(cli.cwd / "out" / "keep.bin") == origin.sha256("keep.bin")


HOSTILE = {
    "h1": 'attachment; filename="../../escaped.txt"',
    "h2": 'attachment; filename="/tmp/absolute.txt"',
    "h3": "attachment; filename*=UTF-8''..%2F..%2Fencoded.txt",
    "h4": 'attachment; filename="..\\\\..\\\\windows.txt"',
    "h5": 'attachment; filename="CON"',
    "h6": 'attachment; filename=".."',
}


async def test_hostile_content_disposition_lands_inside(origin: Origin, cli: HaulerRunner) -> None:
    for name, disposition in HOSTILE.items():
        origin.add(name, 64 * KIB + len(name), disposition=disposition)
    (cli.cwd / "out" / "deep").mkdir(parents=True)
    before = files_under(cli.cwd)
    done = await cli.run("get", "--json", "-o", "out/deep", *[origin.url(n) for n in HOSTILE])
    assert done.returncode == 0, done.stderr
    out = (cli.cwd / "out" / "deep").resolve()
    created = files_under(cli.cwd) - before
    assert len(created) == len(HOSTILE)
    assert all(path.resolve().is_relative_to(out) for path in created)
    records = json.loads(done.stdout)["files"]
    for record, name in zip(records, HOSTILE, strict=True):
        path = Path(record["path"])
        assert path.resolve().parent == out
        assert sha256_of(path) == origin.sha256(name)
    names = sorted(Path(r["path"]).name for r in records)
    assert "escaped.txt" in names
    assert "_CON" in names


async def test_input_file_with_json_lines(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("p.bin", 200 * KIB)
    origin.add("q.bin", 1 * MIB)
    origin.add("r.bin", 10 * KIB)
    lines = [
        "# a comment, then a blank line",
        "",
        origin.url("p.bin"),
        json.dumps(
            {
                "url": origin.url("q.bin"),
                "output": "sub/renamed.bin",
                "checksum": "sha256=" + origin.sha256("q.bin"),
            }
        ),
    ]
    lines.append(json.dumps({"url": origin.url("r.bin"), "output": "../../../escape.bin"}))
    (cli.cwd / "list.txt").write_text("\n".join(lines) + "\n")
    done = await cli.run("get", "-d", "out", "-i", "list.txt", origin.url("r.bin"))
    assert done.returncode == 0, done.stderr
    assert sha256_of(cli.cwd / "out" / "escape.bin") == origin.sha256("r.bin")
    assert not (cli.cwd / "escape.bin").exists()
    assert sha256_of(cli.cwd / "out" / "p.bin") == origin.sha256("p.bin")
    assert sha256_of(cli.cwd / "out" / "sub" / "renamed.bin") == origin.sha256("q.bin")
    assert sha256_of(cli.cwd / "out" / "r.bin") == origin.sha256("r.bin")


async def test_urls_from_stdin(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("s.bin", 100 * KIB)
    done = await cli.run("get", "-d", "out", "-i", "-", stdin=f"{origin.url('s.bin')}\n".encode())
    assert done.returncode == 0, done.stderr
    assert sha256_of(cli.cwd / "out" / "s.bin") == origin.sha256("s.bin")


async def test_bad_json_line_names_its_line(cli: HaulerRunner) -> None:
    (cli.cwd / "list.txt").write_text(
        'http://127.0.0.1:9/a\n# ok\n{"url": "http://127.0.0.1:9/b", "bogus": 1}\n'
    )
    done = await cli.run("get", "-i", "list.txt")
    assert done.returncode == 2
    assert "line 3" in done.stderr
    assert "bogus" in done.stderr


async def test_secrets_never_printed(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("t.bin", 10 * KIB, faults={i: Fault(status=403) for i in range(1, 20)})
    url = origin.url("t.bin").replace("http://", "http://alice:pa55word@")
    lines = [json.dumps({"url": url, "headers": {"Authorization": "Bearer tok3nvalue"}})]
    (cli.cwd / "list.txt").write_text("\n".join(lines) + "\n")
    for flags in ([], ["--json"]):
        done = await cli.run("get", *flags, "-d", "out", "-i", "list.txt")
        assert done.returncode == 5  # every attempt answered 403
        output = done.stdout + done.stderr
        assert "t.bin" in output
        for secret in ("pa55word", "tok3nvalue"):
            assert secret not in output
    for proxy in ("http://alice:pr0xypass@127.0.0.1:9", "socks5://alice:pr0xypass@127.0.0.1:9"):
        args = ("--log-level", "DEBUG", "get", "--proxy", proxy, "-d", "out", origin.url("t.bin"))
        done = await cli.run(*args)
        assert done.returncode == 6  # the proxy refuses: network
        assert "127.0.0.1" in done.stderr
        assert "pr0xypass" not in done.stdout + done.stderr


async def test_unusable_output_dir_is_a_usage_error(cli: HaulerRunner) -> None:
    (cli.cwd / "a-file").write_text("not a directory")
    done = await cli.run("get", "-d", "a-file/sub", "http://127.0.0.1:9/x")
    assert done.returncode == 2
    assert "cannot create a-file/sub" in done.stderr
    assert "Traceback" not in done.stderr
