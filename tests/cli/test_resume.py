"""kill -9 in the middle of `hauler get`, then the same command again: the file completes,
matches the origin's sha256, and little of it was sent twice.
"""

from __future__ import annotations

import asyncio
import random
import signal

import pytest

from tests.cli.process import HaulerRunner, finish
from tests.cli.test_get import MIB, sha256_of
from tests.transfer.origin import Origin

CONNECTIONS = 4
RATE_PER_CONNECTION = 4 * MIB  # 64 MiB at 4 x 4 MiB/s: about 4 s, long enough to aim a kill
POLL_S = 0.02
MAX_WAIT_S = 60.0


async def wait_until_sent(origin: Origin, name: str, nbytes: int, process: object) -> None:
    """Return once the origin has sent ``nbytes`` of ``name`` (bounded in time)."""
    assert isinstance(process, asyncio.subprocess.Process)
    async with asyncio.timeout(MAX_WAIT_S):
        while origin.bytes_sent(name) < nbytes:
            assert process.returncode is None, "hauler ended before it could be killed"
            await asyncio.sleep(POLL_S)


async def kill_at(cli: HaulerRunner, origin: Origin, name: str, fraction: float) -> None:
    """Start the download and SIGKILL it once ``fraction`` of the file has been sent (in all)."""
    size = origin.files[name].size
    process = await cli.start(*get_args(origin, name))
    await wait_until_sent(origin, name, int(size * fraction), process)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert process.returncode == -signal.SIGKILL


def get_args(origin: Origin, name: str) -> list[str]:
    """The one command the user runs, again and again."""
    return ["get", "-d", "out", "-x", str(CONNECTIONS), origin.url(name)]


@pytest.mark.slow
async def test_kill_9_then_resume(origin: Origin, cli: HaulerRunner) -> None:
    size = 64 * MIB
    origin.add("big.bin", size, rate_bps=RATE_PER_CONNECTION)
    await kill_at(cli, origin, "big.bin", random.uniform(0.3, 0.7))
    partial = list((cli.cwd / "out").glob("big.bin.part*"))
    assert partial, "the killed download left no partial file to resume from"
    assert not (cli.cwd / "out" / "big.bin").exists()
    sent_before = origin.bytes_sent("big.bin")
    done = await finish(await cli.start(*get_args(origin, "big.bin")))
    assert done.returncode == 0, done.stderr
    assert sha256_of(cli.cwd / "out" / "big.bin") == origin.sha256("big.bin")
    resent = origin.bytes_sent("big.bin") - size
    print(f"killed at {sent_before / size:.0%} sent; re-sent {resent / size:.1%} of the file")
    assert resent < 0.25 * size, f"{resent} bytes sent twice (killed after {sent_before})"
    assert sorted(p.name for p in (cli.cwd / "out").iterdir()) == ["big.bin"]


@pytest.mark.slow
async def test_repeated_kill_9_then_resume(origin: Origin, cli: HaulerRunner) -> None:
    size = 64 * MIB
    origin.add("many.bin", size, rate_bps=RATE_PER_CONNECTION)
    rng = random.Random()
    for low, high in ((0.10, 0.30), (0.35, 0.55), (0.60, 0.80)):
        await kill_at(cli, origin, "many.bin", rng.uniform(low, high))
    done = await finish(await cli.start(*get_args(origin, "many.bin")))
    assert done.returncode == 0, done.stderr
    assert sha256_of(cli.cwd / "out" / "many.bin") == origin.sha256("many.bin")
    resent = origin.bytes_sent("many.bin") - size
    print(f"3 kills: re-sent {resent / size:.1%} of the file")
    assert resent < 0.25 * size, f"{resent} bytes sent twice over 3 kills"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_interrupt_exits_cleanly_and_resumes(
    origin: Origin, cli: HaulerRunner, signum: signal.Signals, status: int
) -> None:
    size = 24 * MIB
    origin.add("int.bin", size, rate_bps=RATE_PER_CONNECTION)
    process = await cli.start(*get_args(origin, "int.bin"))
    await wait_until_sent(origin, "int.bin", size // 3, process)
    process.send_signal(signum)
    stopped = await finish(process)
    assert stopped.returncode == status
    assert "run the same command again to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    done = await finish(await cli.start(*get_args(origin, "int.bin")))
    assert done.returncode == 0, done.stderr
    assert sha256_of(cli.cwd / "out" / "int.bin") == origin.sha256("int.bin")
    # A clean interruption flushes the control file: almost nothing is fetched twice.
    resent = origin.bytes_sent("int.bin") - size
    print(f"{signum.name}: re-sent {resent / size:.1%} of the file")
    assert resent < 0.10 * size
