"""The one thing a recorder reads inside an MPEG-TS segment: when its first frame is shown
(the presentation timestamp of its first video PES, else of its first audio one).

Parts are segments concatenated as they are, so their timestamps must run on from one segment
to the next; an encoder that restarts without ``#EXT-X-DISCONTINUITY`` starts its clock again,
and a part spanning that plays for the wrong length. Comparing each segment's first timestamp
with where the previous one's should end catches it (ISO/IEC 13818-1: 188-byte packets, PES
headers with a 33-bit PTS in 90 kHz ticks).
"""

from __future__ import annotations

PACKET_BYTES = 188
SYNC = 0x47
PTS_HZ = 90_000
# A segment's first frames are in its first packets; past this the segment has no PES at all.
MAX_SCANNED_PACKETS = 4096
_VIDEO = range(0xE0, 0xF0)
_AUDIO = range(0xC0, 0xE0)


def first_pts_s(data: bytes) -> float | None:
    """The first video PTS of the segment ``data`` in seconds (the first audio one when it
    has no video); None when it holds no timestamp this can read."""
    start = _first_sync(data)
    if start is None:
        return None
    audio: float | None = None
    stop = min(len(data) - PACKET_BYTES, start + MAX_SCANNED_PACKETS * PACKET_BYTES)
    for offset in range(start, stop + 1, PACKET_BYTES):
        found = _pes_pts(data, offset)
        if found is None:
            continue
        stream_id, pts = found
        if stream_id in _VIDEO:
            return pts / PTS_HZ
        if stream_id in _AUDIO and audio is None:
            audio = pts / PTS_HZ
    return audio


def _first_sync(data: bytes) -> int | None:
    """The offset of the first packet: a sync byte with another one a packet further on."""
    for offset in range(min(PACKET_BYTES, len(data))):
        if data[offset] == SYNC and (
            offset + PACKET_BYTES >= len(data) or data[offset + PACKET_BYTES] == SYNC
        ):
            return offset
    return None


def _pes_pts(data: bytes, offset: int) -> tuple[int, int] | None:
    """(stream id, PTS) of the PES that starts in the packet at ``offset``, if one does."""
    header = data[offset : offset + 4]
    if header[0] != SYNC or not header[1] & 0x40:  # no payload unit starts here
        return None
    control = (header[3] >> 4) & 0x3
    payload = offset + 4
    if control & 0x2:  # an adaptation field first
        payload += 1 + data[payload]
    if not control & 0x1 or payload + 14 > offset + PACKET_BYTES:
        return None
    pes = data[payload : payload + 14]
    if pes[:3] != b"\x00\x00\x01" or not pes[7] & 0x80:  # not a PES, or no PTS in it
        return None
    return pes[3], _timestamp(pes[9:14])


def _timestamp(field: bytes) -> int:
    """The 33-bit timestamp spread over five bytes with marker bits."""
    return (
        ((field[0] >> 1) & 0x07) << 30
        | field[1] << 22
        | (field[2] >> 1) << 15
        | field[3] << 7
        | field[4] >> 1
    )
