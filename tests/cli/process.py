"""Running the real `hauler` command as a subprocess, the way a user would.

The origin runs in the test's event loop, so the subprocess is driven with asyncio (a blocking
``subprocess.run`` would starve the origin).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

RUN_TIMEOUT_S = 90.0

# Fast failures: tests that expect an error should not wait out production back-offs.
FAST_ENV = {
    "HAULER_TRANSFER__SEGMENT_RETRIES": "1",
    "HAULER_TRANSFER__RETRY_BASE_S": "0.01",
    "HAULER_TRANSFER__RETRY_CAP_S": "0.05",
    "HAULER_TRANSFER__CONNECT_TIMEOUT_S": "5",
}


@dataclass(frozen=True)
class Completed:
    """A finished `hauler` run."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class HaulerRunner:
    """Starts `python -m hauler ...` in ``cwd`` with an isolated environment."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The child's environment: no user config, no store outside ``cwd``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAULER_")}
        env |= {
            "HAULER_CONFIG": os.devnull,  # no configuration file
            "XDG_CONFIG_HOME": str(self.cwd / "no-such-config-home"),
            "HAULER_STORE": f"sqlite:///{self.cwd / 'state.db'}",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
        return env | FAST_ENV | self.env

    async def start(self, *args: str, stdin: bytes | None = None) -> asyncio.subprocess.Process:
        """Start `hauler ARGS` without waiting for it."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hauler",
            *args,
            cwd=self.cwd,
            env=self.environment(),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str, stdin: bytes | None = None) -> Completed:
        """Run `hauler ARGS` to completion (bounded by ``RUN_TIMEOUT_S``)."""
        process = await self.start(*args, stdin=stdin)
        return await finish(process, stdin)


async def finish(process: asyncio.subprocess.Process, stdin: bytes | None = None) -> Completed:
    """Wait for ``process`` and collect its output; kill it if it overruns."""
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, err = await process.communicate(stdin)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Completed(process.returncode, out.decode(), err.decode())
