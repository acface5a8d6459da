"""Which control files (``NAME.part.json``) are in an output directory, listed once.

Before its probe, a download looks for the control file of the name its URL gives, to ask for
the first missing byte instead of byte 0. Over many small new files, that look is one failed
``open`` and a few path objects per file; this index answers "surely not there" from one listing
of the directory, kept current by the downloads of this process.

It can only be wrong one way: a control file another process writes after the listing is not
known here. Then the probe asks from byte 0, and the download still resumes from the real control
file, which it reads once it holds the ``.part`` lock; one request is wasted, no byte is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

CONTROL_SUFFIX = ".part.json"


class ControlFiles:
    """Control file names per directory: a listing taken on first use, plus those written since."""

    def __init__(self) -> None:
        self._names: dict[Path, set[str] | None] = {}

    def may_exist(self, directory: Path, name: str) -> bool:
        """False when the control file ``name`` is surely not in ``directory``."""
        if directory not in self._names:
            self._names[directory] = _listing(directory)
        names = self._names[directory]
        return names is None or name in names

    def note_written(self, control_path: Path) -> None:
        """A download of this process wrote ``control_path``."""
        names = self._names.get(control_path.parent)
        if names is not None:
            names.add(control_path.name)


def _listing(directory: Path) -> set[str] | None:
    """The control file names in ``directory``; empty when it does not exist, None (unknown)
    when it cannot be read."""
    try:
        with os.scandir(directory) as entries:
            return {e.name for e in entries if e.name.endswith(CONTROL_SUFFIX)}
    except FileNotFoundError:
        return set()
    except OSError:
        return None
