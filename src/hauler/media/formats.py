"""Format requests: hauler's shortcuts to yt-dlp format strings, and a check for nonsense.

``-f`` takes yt-dlp's own syntax (``bv*+ba/b``, ``22/18``, ``bv[height<=480]+ba``) or one of:

========  ==============================================  =====================================
shortcut  yt-dlp format                                   meaning
========  ==============================================  =====================================
best      ``bv*+ba/b``                                    the best video + best audio (default)
worst     ``wv*+wa/w``                                    the smallest
audio     ``ba/b``                                        audio only, else the best single file
720       ``bv*[height<=720]+ba/b[height<=720]``          the best at most 720 pixels high
========  ==============================================  =====================================

A height may carry a ``p`` (``720p``). Pure: no I/O; yt-dlp's own parser has the last word
when the format is applied (``hauler.media.extract``).
"""

from __future__ import annotations

import itertools
import re

from hauler.errors import BadRequest

DEFAULT_FORMAT = "bv*+ba/b"  # yt-dlp's default when ffmpeg can merge
SHORTCUTS = {
    "best": DEFAULT_FORMAT,
    "worst": "wv*+wa/w",
    "audio": "ba/b",
}
MAX_HEIGHT = 10_000
_HEIGHT = re.compile(r"(?i)^(\d{1,5})p?$")
_ALLOWED = re.compile(r"^[\w.*+/,()\[\]<>=!^$~:?&|'\" -]+$")
_OPERATORS = "+/,"
_PAIRS = {"]": "[", ")": "("}


def format_spec(text: str | None) -> str:
    """The yt-dlp format string for ``text`` (a shortcut, a height or yt-dlp syntax; None or
    empty gives the default); ``BadRequest`` with one line for nonsense."""
    spec = (text or "").strip()
    if not spec:
        return DEFAULT_FORMAT
    if spec.lower() in SHORTCUTS:
        return SHORTCUTS[spec.lower()]
    height = _HEIGHT.match(spec)
    if height is not None:
        return _at_most(int(height.group(1)), spec)
    _check_syntax(spec)
    return spec


def _at_most(height: int, spec: str) -> str:
    if not 1 <= height <= MAX_HEIGHT:
        raise BadRequest(f"format {spec!r}: a height must be between 1 and {MAX_HEIGHT}")
    return f"bv*[height<={height}]+ba/b[height<={height}]"


def _check_syntax(spec: str) -> None:
    """Reject what yt-dlp could never read: stray characters, unbalanced brackets, an operator
    with nothing on one side."""
    if _ALLOWED.match(spec) is None:
        raise BadRequest(f"format {spec!r}: unexpected characters (see --list-formats)")
    depth: list[str] = []
    outside = []  # the text outside [filters], where the operators live
    for char in spec:
        if char in "[(":
            depth.append(char)
        elif char in _PAIRS:
            if not depth or depth.pop() != _PAIRS[char]:
                raise BadRequest(f"format {spec!r}: unbalanced {char!r}")
        elif "[" not in depth:
            outside.append(char)
    if depth:
        raise BadRequest(f"format {spec!r}: unclosed {depth[-1]!r}")
    _check_operators("".join(outside).replace(" ", ""), spec)


def _check_operators(bare: str, spec: str) -> None:
    if bare[:1] in _OPERATORS or bare[-1:] in _OPERATORS:
        raise BadRequest(f"format {spec!r}: starts or ends with an operator")
    for first, second in itertools.pairwise(bare):
        if first in _OPERATORS and second in _OPERATORS:
            raise BadRequest(f"format {spec!r}: two operators in a row ({first}{second})")
