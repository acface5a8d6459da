"""yt-dlp's ways of saying "this room is not live": its ``UserNotLive`` exception and the words
extractors raise for offline, upcoming and ended streams, read as ``hauler.errors.NotLive``
(transient: poll the room again later) with the ``RoomState`` they mean.

The generic classifier (``hauler.media.errors.classify``) does not know these: an offline
Twitch channel comes out of ``extract`` as a ``Fatal`` ("The channel is not currently live")
whose ``__cause__`` is yt-dlp's error. ``not_live`` reads such an error (or yt-dlp's own), its
exception chain first and its words second; ``not_live_message`` reads a message alone.

The words, as yt-dlp 2026.10.26's extractors and YouTube's playability reasons put them:
"The channel is not currently live" (``UserNotLive``'s default), "<x> is offline" (Room, Stream,
User, Model, Content...), "is not live", "not live anymore", "This live event will begin in
3 hours", "Premieres in 2 days", "has not (yet) started", "scheduled for", "<x> has ended".
"""

from __future__ import annotations

import re

from hauler.errors import NotLive
from hauler.media.errors import clean_reason, exception_chain
from hauler.policy.watch import RoomState
from hauler.redact import Redactor

# Order matters: "Stream is offline; scheduled for ..." is upcoming, not offline.
_UPCOMING = re.compile(
    r"(?i)will begin (?:in|at)\b|premieres? (?:in|at)\b|premiere will begin"
    r"|has not (?:yet )?started|not started yet|not yet started|scheduled for|upcoming live"
    r"|is_upcoming|waiting for (?:the )?(?:stream|live|premiere)"
)
_ENDED = re.compile(
    r"(?i)(?:live ?stream|live event|live broadcast|broadcast|live|stream|event) has ended"
    r"|(?:not|no longer) live anymore|was live\b|stream (?:is )?over\b"
)
_OFFLINE = re.compile(
    r"(?i)not currently live|is offline|is not (?:currently )?live|isn'?t live|not live now"
    r"|streamer is not live|channel is not live|user is not live|is not streaming"
    r"|live event is offline|no (?:live ?)?stream (?:is )?(?:available|running)|currently offline"
)
_NOT_LIVE_TYPES = frozenset({"UserNotLive"})


def not_live_state(message: str) -> RoomState | None:
    """The room state a yt-dlp message says (UPCOMING, ENDED or OFFLINE), None when it says
    nothing about the room being live."""
    for pattern, state in (
        (_UPCOMING, RoomState.UPCOMING),
        (_ENDED, RoomState.ENDED),
        (_OFFLINE, RoomState.OFFLINE),
    ):
        if pattern.search(message):
            return state
    return None


def not_live_message(message: str, redactor: Redactor | None = None) -> NotLive | None:
    """``NotLive`` (its reason cleaned as the generic classifier cleans it) when ``message``
    says the room is not live; None otherwise."""
    if not_live_state(message) is None:
        return None
    return NotLive(clean_reason(message, redactor))


def not_live(exc: BaseException, redactor: Redactor | None = None) -> NotLive | None:
    """``NotLive`` when ``exc`` (yt-dlp's, or the hauler error ``extract`` raised from it)
    says the room is not live: a ``UserNotLive`` anywhere in its chain, or the words; None
    otherwise. An error that already is ``NotLive`` is returned as it is."""
    if isinstance(exc, NotLive):
        return exc
    chain = list(exception_chain(exc))
    if any(type(inner).__name__ in _NOT_LIVE_TYPES for inner in chain):
        return NotLive(clean_reason(str(exc), redactor))
    for inner in chain:
        found = not_live_message(str(inner), redactor)
        if found is not None:
            return found
    return None


def state_of(error: NotLive) -> RoomState:
    """The room state a ``NotLive`` error means (OFFLINE when its words say no more)."""
    return not_live_state(error.message) or RoomState.OFFLINE
