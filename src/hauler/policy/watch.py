"""The decisions of a room watcher, pure: whether an extracted room is live, which protocol its
stream speaks, and when to poll it again.

``room_state`` reads yt-dlp's ``live_status`` first (``is_live``, ``is_upcoming``,
``was_live``, ``post_live``, ``not_live``), then ``is_live``. yt-dlp leaves both unset where no
extractor knows the site: its HTML5 embed reader, given a page whose ``<video>`` points at an
HLS playlist, returns the playlist as one ``m3u8_native`` format with ``is_live`` and
``live_status`` None (measured with yt-dlp 2026.10.26; the generic extractor given the playlist
itself says ``is_live: True``, ``live_status: 'is_live'``). So an info without live flags whose
chosen stream is HLS or FLV counts as live: a VOD playlist taken for live costs nothing, the
follower ends on its ``#EXT-X-ENDLIST``. Without flags and without such a stream (no formats,
a plain MP4) the room is offline.

Polls come every ``poll_s`` with jitter (uniform in 0.8-1.2 x), so that a fleet's watchers of
one room spread out; after extraction errors the wait doubles per failure, up to
``MAX_BACKOFF_FACTOR`` x ``poll_s``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

JITTER = 0.2  # a poll comes at (1 +- JITTER) x poll_s
MAX_BACKOFF_FACTOR = 10.0  # failed polls back off to at most this many poll_s
LIVE_TTL_S = 15.0  # a live answer (its stream URL) serves other watchers at most this long

StreamProtocol = Literal["hls", "flv"]

_HLS_PROTOCOLS = frozenset({"m3u8", "m3u8_native"})
_HTTP_PROTOCOLS = frozenset({"http", "https"})


class RoomState(StrEnum):
    """What a room is doing now."""

    LIVE = "live"  # on air: record it
    UPCOMING = "upcoming"  # scheduled, not started
    OFFLINE = "offline"  # nothing on air (or no stream we can record)
    ENDED = "ended"  # a session was live and is over (a watcher waits for the next)


_BY_STATUS: Mapping[str, RoomState] = {
    "is_live": RoomState.LIVE,
    "is_upcoming": RoomState.UPCOMING,
    "was_live": RoomState.ENDED,
    "post_live": RoomState.ENDED,
    "not_live": RoomState.OFFLINE,
}


def room_state(info: Mapping[str, Any]) -> RoomState:
    """The room's state from an extracted info dict (see the module's docstring)."""
    status = info.get("live_status")
    if isinstance(status, str) and status in _BY_STATUS:
        return _BY_STATUS[status]
    is_live = info.get("is_live")
    if is_live is True:
        return RoomState.LIVE
    if is_live is False:
        return RoomState.OFFLINE
    # No flags at all: a page of no known site. Its stream decides.
    return RoomState.LIVE if stream_protocol(chosen_format(info)) else RoomState.OFFLINE


def chosen_format(info: Mapping[str, Any]) -> Mapping[str, Any]:
    """The format yt-dlp chose: the info itself for one format (its ``url``, ``protocol``,
    ``ext``, ``http_headers`` are the format's), else its best listed format, else nothing."""
    if info.get("url"):
        return info
    requested = [f for f in info.get("requested_formats") or () if isinstance(f, Mapping)]
    if len(requested) == 1:
        return requested[0]
    formats = [f for f in info.get("formats") or () if isinstance(f, Mapping) and f.get("url")]
    return formats[-1] if formats else {}  # yt-dlp lists formats worst first


def stream_protocol(fmt: Mapping[str, Any]) -> StreamProtocol | None:
    """``hls`` for an m3u8 format, ``flv`` for an FLV one over HTTP(S); None for the rest (a
    plain file, DASH, RTMP...) and for no format."""
    protocol = str(fmt.get("protocol") or "").lower()
    ext = str(fmt.get("ext") or "").lower()
    url = str(fmt.get("url") or "")
    if protocol in _HLS_PROTOCOLS or (not protocol and ext == "m3u8"):
        return "hls"
    path = url.split("?", 1)[0].lower()
    is_http = protocol in _HTTP_PROTOCOLS or (not protocol and url.startswith("http"))
    if is_http and (ext == "flv" or path.endswith(".flv")):
        return "flv"
    return None


def _jittered(seconds: float, rng: random.Random) -> float:
    return seconds * rng.uniform(1.0 - JITTER, 1.0 + JITTER)


def next_poll_s(poll_s: float, rng: random.Random) -> float:
    """The wait before the next poll of a room that answered: ``poll_s`` x 0.8-1.2."""
    return _jittered(poll_s, rng)


def error_backoff_s(poll_s: float, failures: int, rng: random.Random) -> float:
    """The wait after ``failures`` polls in a row failed (1 = the first): ``poll_s`` doubled
    per failure, jittered, and never over ``MAX_BACKOFF_FACTOR`` x ``poll_s`` (the ceiling is
    lowered by the jitter, so that the waits at the cap still spread)."""
    cap_s = MAX_BACKOFF_FACTOR * poll_s / (1.0 + JITTER)
    ceiling = min(cap_s, poll_s * 2.0 ** max(0, failures))
    return _jittered(ceiling, rng)


def cache_ttl_s(poll_s: float, state: RoomState) -> float:
    """How long a poll's answer serves the other watchers of the room.

    Not live: the shortest jittered poll interval, so a watcher never reads its own answer back
    at its next poll, while every other watcher polling within that time is spared an
    extraction. Live: the same, at most ``LIVE_TTL_S`` (a stream URL may be signed and short-lived).
    """
    ttl_s = poll_s * (1.0 - JITTER)
    return min(ttl_s, LIVE_TTL_S) if state is RoomState.LIVE else ttl_s
