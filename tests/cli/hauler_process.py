"""Running the real ``hauler`` command as a subprocess, the way a user or a script does."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HAULER = str(Path(sys.executable).with_name("hauler"))
RUN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Ran:
    """A finished ``hauler`` invocation."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.out)


def hauler_env(store_url: str, **extra: str) -> dict[str, str]:
    """The environment for a ``hauler`` subprocess talking to ``store_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAULER_")}
    # No configuration file: neither a project nor a user one.
    env.update({"HAULER_STORE": store_url, "HAULER_CONFIG": os.devnull, **extra})
    env.setdefault("XDG_CONFIG_HOME", "/nonexistent/xdg-config")
    return env


async def hauler(
    store_url: str, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> Ran:
    """Run ``hauler ARGS`` to completion (bounded) and capture its output."""
    proc = await asyncio.create_subprocess_exec(
        HAULER,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=hauler_env(store_url),
        cwd=cwd,
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        out, err = await proc.communicate(None if stdin is None else stdin.encode())
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())
