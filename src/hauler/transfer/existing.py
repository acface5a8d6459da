"""What a taken final name means for a download, by the ``OnExisting`` policy.

A file under the final name is this download's only when its mark says so (``marks``); then it
is complete and skipped. Anything else is someone else's: by default the download takes the
next free numbered name (``x.1.bin``, aria2c's auto-file-renaming); ``skip`` leaves it (wget
``-n``), ``overwrite`` replaces it, ``continue`` takes its bytes as the start of this download
(wget ``-c``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

from hauler.models import OnExisting
from hauler.naming import MAX_COUNTER, numbered
from hauler.transfer import marks


class Verdict(Enum):
    """What to do with one candidate name."""

    USE = "use"  # download under this name
    SKIP = "skip"  # report the file there as this download, fetch nothing
    NEXT = "next"  # taken: try the next numbered name
    CONTINUE = "continue"  # download under this name, from the existing file's bytes


def judge(path: Path, source: str, policy: OnExisting) -> Verdict:
    """The verdict on ``path`` for the download whose ``marks.url_key`` is ``source``."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return Verdict.USE  # opening its partial says what is wrong with the directory
    if policy is OnExisting.OVERWRITE:
        return Verdict.USE
    if marks.is_complete(path, source):
        return Verdict.SKIP
    if policy is OnExisting.SKIP:
        return Verdict.SKIP
    if policy is OnExisting.CONTINUE and stat.S_ISREG(st.st_mode):
        return Verdict.CONTINUE
    return Verdict.NEXT


def candidates(path: Path) -> Iterator[Path]:
    """``path``, then its numbered names up to ``MAX_COUNTER``."""
    yield path
    for counter in range(1, MAX_COUNTER + 1):
        yield path.with_name(numbered(path.name, counter))


def find_complete(path: Path, url: str) -> Path | None:
    """Among ``path`` and the numbered names after it that exist, the one marked complete for
    ``url`` (a file an earlier run downloaded, maybe under a collision's name); None if none."""
    source = marks.url_key(url)
    for candidate in candidates(path):
        if not os.path.lexists(candidate):
            return None
        if marks.is_complete(candidate, source):
            return candidate
    return None
