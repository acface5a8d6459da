"""`hauler get` with taken names, end to end (issue 8, defect 6): two URLs, one name, two files;
the user's file is never counted complete nor overwritten unless asked (-n, -c, --allow-overwrite).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.cli.process import HaulerRunner
from tests.transfer.origin import Origin, content

KIB = 1024
USERS = b"the user's notes\n"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gets(origin: Origin, name: str) -> int:
    return len([r for r in origin.requests_for(name) if r.method == "GET"])


async def test_two_urls_one_name_then_a_rerun(origin: Origin, cli: HaulerRunner) -> None:
    for name, size in (("a.bin", 300 * KIB), ("b.bin", 200 * KIB)):
        origin.add(name, size, disposition='attachment; filename="x.bin"')
    urls = [origin.url("a.bin"), origin.url("b.bin")]
    done = await cli.run("get", "-d", "out", "-j", "2", *urls)
    assert done.returncode == 0, done.stderr
    out = cli.cwd / "out"
    assert sorted(p.name for p in out.iterdir()) == ["x.1.bin", "x.bin"]
    by_content = {sha256_of(p) for p in out.iterdir()}
    assert by_content == {origin.sha256("a.bin"), origin.sha256("b.bin")}
    assert "skipped" not in done.stdout
    again = await cli.run("get", "-d", "out", *urls)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already complete") == 2, again.stdout
    assert sorted(p.name for p in out.iterdir()) == ["x.1.bin", "x.bin"]


async def test_a_users_file_is_kept(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("notes.txt", 100 * KIB)
    url = origin.url("notes.txt")
    out = cli.cwd / "out"
    out.mkdir()
    (out / "notes.txt").write_bytes(USERS)
    done = await cli.run("get", "-d", "out", url)
    assert done.returncode == 0, done.stderr
    assert (out / "notes.txt").read_bytes() == USERS
    assert sha256_of(out / "notes.1.txt") == origin.sha256("notes.txt")
    # The rerun finds its own file under the numbered name before any request.
    origin.log.clear()
    again = await cli.run("get", "-d", "out", url)
    assert again.returncode == 0, again.stderr
    assert "already complete" in again.stdout and gets(origin, "notes.txt") == 0
    # -n leaves the user's file, without a request.
    (out / "notes.1.txt").unlink()
    skipped = await cli.run("get", "-d", "out", "-n", url)
    assert skipped.returncode == 0, skipped.stderr
    assert gets(origin, "notes.txt") == 0
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --allow-overwrite replaces it.
    replaced = await cli.run("get", "-d", "out", "--allow-overwrite", url)
    assert replaced.returncode == 0, replaced.stderr
    assert sha256_of(out / "notes.txt") == origin.sha256("notes.txt")


async def test_continue_resumes_a_file_from_elsewhere(origin: Origin, cli: HaulerRunner) -> None:
    origin.add("big.bin", 900 * KIB)
    out = cli.cwd / "out"
    out.mkdir()
    (out / "big.bin").write_bytes(content("big.bin", 1, 0, 300 * KIB))
    done = await cli.run("get", "-d", "out", "-c", origin.url("big.bin"))
    assert done.returncode == 0, done.stderr
    assert sha256_of(out / "big.bin") == origin.sha256("big.bin")
    assert origin.requests_for("big.bin")[0].range == f"bytes={300 * KIB}-"
    assert sorted(p.name for p in out.iterdir()) == ["big.bin"]
