"""When a worker exits by itself."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """``forever``: only on a signal or `hauler stop`; ``drain``: when nothing is queued,
    retrying or running anywhere and its lanes are idle; ``once``: after one claimed batch."""

    FOREVER = "forever"
    DRAIN = "drain"
    ONCE = "once"
