"""HLS playlists (RFC 8216) as data: a media playlist's segments with their media sequence
numbers, durations, discontinuities and dates, and a master playlist's variants; every URI
resolved against the playlist's own URL.

Only what a recorder acts on is read; tags it does not know (LL-HLS parts, preload hints,
session data) are skipped, as clients must (RFC 8216 4.1). A text that is not a playlist at all
(an HTML error page from a CDN) is ``BadPlaylist``: transient, a reload may find the real one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin

from hauler.errors import ErrorClass, Transient

HEADER = "#EXTM3U"
# RFC 8216 4.3.3.1 makes EXT-X-TARGETDURATION required; without one, a reload every this many
# seconds (or the longest segment's duration, when longer) is what players do.
DEFAULT_TARGET_S = 6.0
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')
_RESOLUTION = re.compile(r"^([0-9]+)x([0-9]+)$")
_DIGITS = re.compile(r"[0-9]+")


class BadPlaylist(Transient):
    """The answer is not an HLS playlist (or a tag in it cannot be read)."""

    error_class = ErrorClass.CONTENT


@dataclass(frozen=True, slots=True)
class Segment:
    """One media segment: its media sequence number, absolute URL and duration.

    ``is_discontinuity``: an ``EXT-X-DISCONTINUITY`` comes before it (its timestamps need not
    follow the previous segment's). ``program_date_time``: the wall-clock time (epoch seconds)
    of its first sample, given by ``EXT-X-PROGRAM-DATE-TIME`` or counted on from an earlier
    segment's. ``key_method`` is None unless it is encrypted (``AES-128``, ``SAMPLE-AES``);
    ``init_url`` is its ``EXT-X-MAP`` (fMP4 segments); ``byte_range`` is (length, offset).
    """

    sequence: int
    url: str
    duration_s: float
    is_discontinuity: bool = False
    program_date_time: float | None = None
    key_method: str | None = None
    init_url: str | None = None
    byte_range: tuple[int, int | None] | None = None


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """A media playlist: its window of segments (oldest first) and whether it ended."""

    url: str
    media_sequence: int
    target_duration_s: float
    segments: tuple[Segment, ...]
    is_ended: bool = False
    playlist_type: str | None = None  # EVENT or VOD when the playlist says so
    discontinuity_sequence: int = 0

    @property
    def last_sequence(self) -> int:
        """The newest segment's sequence number (``media_sequence - 1`` when empty)."""
        return self.media_sequence + len(self.segments) - 1

    @property
    def window_s(self) -> float:
        """The media the playlist's window holds, in seconds."""
        return sum(segment.duration_s for segment in self.segments)


@dataclass(frozen=True, slots=True)
class Variant:
    """One ``EXT-X-STREAM-INF`` of a master playlist: a rendition of the whole stream."""

    url: str
    bandwidth: int
    resolution: tuple[int, int] | None = None
    codecs: str | None = None
    frame_rate: float | None = None
    audio: str | None = None  # the GROUP-ID of its audio renditions

    @property
    def height(self) -> int:
        """Its height in pixels (0 when the playlist does not say)."""
        return self.resolution[1] if self.resolution else 0


@dataclass(frozen=True, slots=True)
class Rendition:
    """One ``EXT-X-MEDIA``: an alternative audio, video or subtitle rendition."""

    type: str
    group_id: str
    name: str
    url: str | None = None
    language: str | None = None
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    """A master (multivariant) playlist: its variants in the playlist's order."""

    url: str
    variants: tuple[Variant, ...]
    renditions: tuple[Rendition, ...] = ()

    def best(self, max_height: int | None = None) -> Variant | None:
        """The tallest variant (then the highest bandwidth) no taller than ``max_height``;
        None when there is none (all taller: the shortest of them)."""
        fitting = [v for v in self.variants if max_height is None or v.height <= max_height]
        if fitting:
            return max(fitting, key=lambda v: (v.height, v.bandwidth))
        return min(self.variants, key=lambda v: (v.height, v.bandwidth), default=None)


def parse(text: str, url: str) -> MediaPlaylist | MasterPlaylist:
    """The playlist ``text`` fetched from ``url``: a master playlist when it lists variants."""
    lines = _lines(text)
    if any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
        return _master(lines, url)
    return _media(lines, url)


def parse_media(text: str, url: str) -> MediaPlaylist:
    """The media playlist ``text`` fetched from ``url``; ``BadPlaylist`` for a master."""
    playlist = parse(text, url)
    if isinstance(playlist, MasterPlaylist):
        raise BadPlaylist("expected a media playlist, found a master playlist")
    return playlist


def parse_master(text: str, url: str) -> MasterPlaylist:
    """The master playlist ``text`` fetched from ``url``; ``BadPlaylist`` for a media one."""
    playlist = parse(text, url)
    if isinstance(playlist, MediaPlaylist):
        raise BadPlaylist("expected a master playlist, found a media playlist")
    return playlist


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0] != HEADER:
        raise BadPlaylist("the answer is not an HLS playlist (no #EXTM3U)")
    return lines[1:]


@dataclass(slots=True)
class _Pending:
    """The tags read since the last URI: they apply to the next segment."""

    duration_s: float | None = None
    is_discontinuity: bool = False
    program_date_time: float | None = None
    byte_range: tuple[int, int | None] | None = None


@dataclass(slots=True)
class _MediaState:
    """What a media playlist's tags said so far."""

    url: str
    media_sequence: int = 0
    target_duration_s: float | None = None
    is_ended: bool = False
    playlist_type: str | None = None
    discontinuity_sequence: int = 0
    key_method: str | None = None
    init_url: str | None = None
    pending: _Pending = field(default_factory=_Pending)
    segments: list[Segment] = field(default_factory=list)


def _media(lines: list[str], url: str) -> MediaPlaylist:
    state = _MediaState(url)
    for line in lines:
        if line.startswith("#"):
            _media_tag(state, *_split_tag(line))
        else:
            _add_segment(state, line)
    target = state.target_duration_s
    if target is None or target <= 0:
        longest = max((s.duration_s for s in state.segments), default=0.0)
        target = max(DEFAULT_TARGET_S, longest)
    return MediaPlaylist(
        url=url,
        media_sequence=state.media_sequence,
        target_duration_s=target,
        segments=tuple(state.segments),
        is_ended=state.is_ended,
        playlist_type=state.playlist_type,
        discontinuity_sequence=state.discontinuity_sequence,
    )


def _split_tag(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name, value


def _media_tag(state: _MediaState, name: str, value: str) -> None:
    """Apply one tag of a media playlist; unknown tags and comments are skipped."""
    pending = state.pending
    if name == "#EXTINF":
        pending.duration_s = _number(value.partition(",")[0], name)
    elif name == "#EXT-X-TARGETDURATION":
        state.target_duration_s = _number(value, name)
    elif name == "#EXT-X-MEDIA-SEQUENCE":
        state.media_sequence = _integer(value, name)
    elif name == "#EXT-X-DISCONTINUITY-SEQUENCE":
        state.discontinuity_sequence = _integer(value, name)
    elif name == "#EXT-X-DISCONTINUITY":
        pending.is_discontinuity = True
    elif name == "#EXT-X-PROGRAM-DATE-TIME":
        pending.program_date_time = _date(value)
    elif name == "#EXT-X-ENDLIST":
        state.is_ended = True
    elif name == "#EXT-X-PLAYLIST-TYPE":
        state.playlist_type = value.strip().upper() or None
    elif name == "#EXT-X-BYTERANGE":
        pending.byte_range = _byte_range(value)
    else:
        _media_key_tag(state, name, value)


def _media_key_tag(state: _MediaState, name: str, value: str) -> None:
    """``EXT-X-KEY`` and ``EXT-X-MAP``: they apply to every segment after them."""
    if name == "#EXT-X-KEY":
        method = attributes(value).get("METHOD", "NONE").upper()
        state.key_method = None if method == "NONE" else method
    elif name == "#EXT-X-MAP":
        uri = attributes(value).get("URI")
        state.init_url = urljoin(state.url, uri) if uri else None


def _add_segment(state: _MediaState, uri: str) -> None:
    pending, segments = state.pending, state.segments
    if pending.duration_s is None:
        raise BadPlaylist(f"a segment without #EXTINF in the playlist: {uri[:80]}")
    date = pending.program_date_time
    if date is None and segments and not pending.is_discontinuity:
        previous = segments[-1]
        if previous.program_date_time is not None:
            date = previous.program_date_time + previous.duration_s
    segments.append(
        Segment(
            sequence=state.media_sequence + len(segments),
            url=urljoin(state.url, uri),
            duration_s=pending.duration_s,
            is_discontinuity=pending.is_discontinuity,
            program_date_time=date,
            key_method=state.key_method,
            init_url=state.init_url,
            byte_range=pending.byte_range,
        )
    )
    state.pending = _Pending()


def _master(lines: list[str], url: str) -> MasterPlaylist:
    variants: list[Variant] = []
    renditions: list[Rendition] = []
    stream_inf: Mapping[str, str] | None = None
    for line in lines:
        name, value = _split_tag(line)
        if name == "#EXT-X-STREAM-INF":
            stream_inf = attributes(value)
        elif name == "#EXT-X-MEDIA":
            renditions.append(_rendition(attributes(value), url))
        elif not line.startswith("#") and stream_inf is not None:
            variants.append(_variant(stream_inf, urljoin(url, line)))
            stream_inf = None
    return MasterPlaylist(url, tuple(variants), tuple(renditions))


def _variant(found: Mapping[str, str], url: str) -> Variant:
    size = _RESOLUTION.match(found.get("RESOLUTION", ""))
    rate = found.get("FRAME-RATE")
    return Variant(
        url=url,
        bandwidth=_integer(found.get("BANDWIDTH", "0"), "BANDWIDTH"),
        resolution=(int(size.group(1)), int(size.group(2))) if size else None,
        codecs=found.get("CODECS"),
        frame_rate=_number(rate, "FRAME-RATE") if rate else None,
        audio=found.get("AUDIO"),
    )


def _rendition(found: Mapping[str, str], url: str) -> Rendition:
    uri = found.get("URI")
    return Rendition(
        type=found.get("TYPE", ""),
        group_id=found.get("GROUP-ID", ""),
        name=found.get("NAME", ""),
        url=urljoin(url, uri) if uri else None,
        language=found.get("LANGUAGE"),
        is_default=found.get("DEFAULT", "NO").upper() == "YES",
    )


def attributes(value: str) -> dict[str, str]:
    """An attribute list (``BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2"``) as a dict,
    quoted values unquoted (a quoted value may hold commas)."""
    return {name: raw.strip('"') for name, raw in _pairs(value)}


def _pairs(value: str) -> Iterator[tuple[str, str]]:
    for found in _ATTRIBUTE.finditer(value):
        yield found.group(1), found.group(2)


def _number(value: str, tag: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise BadPlaylist(f"{tag.lstrip('#')} is not a number: {value[:40]!r}") from None
    if not math.isfinite(number) or number < 0:
        raise BadPlaylist(f"{tag.lstrip('#')} is out of range: {value[:40]!r}")
    return number


def _integer(value: str, tag: str) -> int:
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise BadPlaylist(f"{tag.lstrip('#')} is not a whole number: {value[:40]!r}")
    return int(text)


def _date(value: str) -> float:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadPlaylist(f"EXT-X-PROGRAM-DATE-TIME is not a date: {value[:40]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _byte_range(value: str) -> tuple[int, int | None]:
    length, _, offset = value.partition("@")
    return _integer(length, "EXT-X-BYTERANGE"), _integer(
        offset, "EXT-X-BYTERANGE"
    ) if offset else None
