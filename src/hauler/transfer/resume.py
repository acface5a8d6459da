"""What an attempt resumes from the partial already on disk, decided around the probe.

Before the probe the response has not named the file yet: the control file of the name the
URL alone gives, read without locking (``guessed_control``), only sets the probe's range
(``probe_ask``), so that a resumed file is asked for from its first missing byte. Once the
partial is open, its control file resumes when the reply pins the same version and the ranges
still fit the file and the ``.part`` on disk (``resumable``); a file taken as this download's
first bytes (wget ``-c``) becomes a one-segment plan when the server sent the rest
(``continued``); anything else starts from zero (``fresh``). A version pinned by its size
alone, with no ETag or Last-Modified, may be resumed but is noted as unverified (aria2c's
rule: ``note_unverified``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hauler import nofollow
from hauler.naming import name_from_response
from hauler.redact import redact_url
from hauler.transfer import marks
from hauler.transfer.attempt import AttemptContext
from hauler.transfer.body import RangeAsk, Reply
from hauler.transfer.controlcheck import MAX_TEXT_CHARS
from hauler.transfer.controlfiles import CONTROL_SUFFIX
from hauler.transfer.partfile import ControlState, PartFile
from hauler.transfer.request import TransferRequest
from hauler.transfer.segments import Segment, SegmentPlan, is_valid_cover

_log = logging.getLogger(__name__)

# A stream of unknown length is one segment that ends where the body ends.
UNKNOWN_END = 1 << 62


def guessed_control(attempt: AttemptContext, request: TransferRequest) -> ControlState | None:
    """The control file of the name the URL alone gives, read without locking.

    Only the probe's range comes from it; the real control file is loaded once the response
    names the file, and a probe that starts where the plan has no segment is simply closed.
    """
    name = name_from_response(request.url, None)  # one safe path component
    directory = attempt.paths.resolved_dir(request.output_dir)
    if not attempt.control_files.may_exist(directory, name + CONTROL_SUFFIX):
        return None
    path = attempt.paths.for_component(request.output_dir, name)
    try:
        control = str(path.parent / (path.name + CONTROL_SUFFIX))
        text = nofollow.read_text(None, control, MAX_TEXT_CHARS + 1)
    except (OSError, UnicodeDecodeError):
        return None
    state = ControlState.from_json(text) if text is not None else None
    if state is not None and state.source not in (None, marks.url_key(request.url)):
        return None  # another URL's partial under this name: this download takes another
    return state


def probe_ask(control: ControlState | None, continue_from: int = 0) -> RangeAsk:
    """The probe's range: from the end of a file taken as this download's first bytes, else
    from the first missing byte of a resumable partial, else from 0."""
    if continue_from:
        return RangeAsk(continue_from)
    if control is None or control.validators.size is None:
        return RangeAsk()
    pending = [s for s in control.segments if s.remaining > 0]
    start = min((s.pos for s in pending), default=max(0, control.validators.size - 1))
    return RangeAsk(start, None, control.validators.if_range)


def continued(start: int, reply: Reply, url: str, source: str) -> ControlState | None:
    """The plan for a file whose first ``start`` bytes are taken as this download's (wget
    ``-c``) when ``reply`` sent the rest of a file of known size; None: start over."""
    size = reply.validators.size
    if reply.status == 206 and reply.start == start and size is not None and size >= start:
        return ControlState(url, reply.validators, [Segment(0, size, start)], source)
    return None


def can_resume(control: ControlState | None, reply: Reply, is_ranged: bool) -> bool:
    """Does ``reply`` (the probe's answer) let ``control``'s ranges be resumed? A ranged 206
    of the same version (``Validators.same_version``: the size alone when neither side has
    an ETag or Last-Modified) whose size the ranges cover exactly once."""
    size = reply.validators.size
    return (
        control is not None
        and is_ranged
        and reply.status == 206
        and size is not None
        and control.validators.same_version(reply.validators)
        and is_valid_cover(control.segments, size)
    )


def holds_claimed_bytes(control: ControlState, size_on_disk: int) -> bool:
    """A ``.part`` of ``size_on_disk`` bytes is long enough for every byte ``control`` claims."""
    return max(s.pos for s in control.segments) <= size_on_disk


def resumable(
    control: ControlState | None, reply: Reply, is_ranged: bool, part: PartFile
) -> ControlState | None:
    """``control`` when the partial ``part`` resumes from it against ``reply``, else None."""
    if control is None or not can_resume(control, reply, is_ranged):
        return None
    return control if holds_claimed_bytes(control, part.size_on_disk()) else None


@dataclass(frozen=True, slots=True)
class Start:
    """Where an attempt starts: its ``plan``; ``resumed``, the control file it resumes (None:
    from zero); ``is_ranged``, whether its lanes may ask for ranges."""

    plan: SegmentPlan
    resumed: ControlState | None
    is_ranged: bool


def start(
    control: ControlState | None,
    reply: Reply,
    is_ranged: bool,
    part: PartFile,
    *,
    connections: int,
    min_split_bytes: int,
) -> Start:
    """Resume ``control`` when it may (``resumable``), else a fresh plan (``fresh``)."""
    resumed = resumable(control, reply, is_ranged, part)
    size = reply.validators.size
    if resumed is not None and size is not None:
        return Start(SegmentPlan(size, resumed.segments, min_split_bytes), resumed, is_ranged)
    return fresh(reply, is_ranged, connections=connections, min_split_bytes=min_split_bytes)


def fresh(reply: Reply, is_ranged: bool, *, connections: int, min_split_bytes: int) -> Start:
    """The plan from zero: up to ``connections`` segments when ranges work and the size is
    known; one segment without ranges; a stream of unknown length to ``UNKNOWN_END``."""
    size = reply.validators.size
    if size is None:
        plan = SegmentPlan(UNKNOWN_END, [Segment(0, UNKNOWN_END, 0)], UNKNOWN_END)
        return Start(plan, None, is_ranged=False)
    if not (is_ranged and reply.accepts_ranges):
        return Start(SegmentPlan(size, [Segment(0, size, 0)], max(1, size)), None, is_ranged=False)
    return Start(SegmentPlan.initial(size, connections, min_split_bytes), None, is_ranged=True)


def note_unverified(url: str, resumed_bytes: int) -> None:
    """Say once that a resume rests on the size alone (the result says so too)."""
    _log.warning(
        "resuming %s at %d bytes without verifying it: the server sends no ETag or "
        "Last-Modified, only the size matches",
        redact_url(url),
        resumed_bytes,
    )
