"""What one download attempt works with, handed to it by the engine: ``AttemptContext``.

The ``Download`` depends on this object, not on the ``Engine`` (no import cycle): the
settings, clock, retry policy, the process's control-file index and partials in use, the
output-path helpers, the rate limiters and a fetcher factory. The engine builds one per attempt.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hauler.clock import Clock
from hauler.config import TransferSettings
from hauler.naming import safe_path
from hauler.policy.retry import RetryPolicy
from hauler.transfer.body import Fetcher
from hauler.transfer.controlfiles import ControlFiles
from hauler.transfer.request import TransferRequest
from hauler.transfer.throttle import TokenBucket


class OutputPaths:
    """Final paths in output directories, cheap for thousands of small files (the resolved
    directories are cached); one per engine."""

    __slots__ = ("_resolved_dirs",)

    def __init__(self) -> None:
        self._resolved_dirs: dict[Path, Path] = {}

    def for_component(self, output_dir: Path, name: str) -> Path:
        """The final path of ``name``, one already sanitised path component, in ``output_dir``.

        The same answer as ``naming.safe_path`` but cheap: the resolved directory is cached,
        and only an existing symlink under that name needs ``safe_path``'s full check.
        """
        if os.sep in name or name in ("", ".", ".."):
            return safe_path(output_dir, name)
        path = self.resolved_dir(output_dir) / name
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except FileNotFoundError:
            return path
        except OSError:
            is_link = True
        return safe_path(output_dir, name) if is_link else path

    def resolved_dir(self, output_dir: Path) -> Path:
        """``output_dir`` resolved (symlinks, ``..``), cached."""
        base = self._resolved_dirs.get(output_dir)
        if base is None:
            base = self._resolved_dirs[output_dir] = output_dir.resolve()
        return base


@dataclass(frozen=True, slots=True)
class AttemptContext:
    """The engine's shared parts one ``Download`` attempt uses, and its rate limiters."""

    settings: TransferSettings
    clock: Clock
    policy: RetryPolicy
    control_files: ControlFiles
    paths: OutputPaths
    # The partials this process's downloads hold, by path: whose (``marks.url_key``) each is.
    parts_in_use: dict[Path, str]
    buckets: tuple[TokenBucket, ...]  # overall and the request's own
    fetcher: Callable[[TransferRequest], Fetcher]  # one with the request's headers and proxy
