"""FLV, read incrementally and written back: the container of HTTP-FLV live streams.

An FLV stream is a 9-byte header (``FLV``, version 1, flags: audio 0x04, video 0x01, the
header's size), then ``PreviousTagSize0`` (4 zero bytes), then tags, each an 11-byte header
(type, data size: 3 bytes, timestamp: 3 bytes + 1 extended byte holding its upper 8 bits,
stream id: 3 zero bytes), its data, and its own size again (``PreviousTagSize``).

``FlvReader.feed`` takes the body's chunks as they arrive (a tag may be split across any
number of them) and returns the tags completed so far. What cannot be FLV raises the
taxonomy's errors: a body that does not begin as FLV is ``BadRequest`` (the URL is not an FLV
stream: reconnecting cannot help), a stream that turns to garbage later is ``InvalidResponse``
(transient: a reconnect starts a clean stream). ``header_bytes`` and ``tag_bytes`` write a
stream back, each tag at a timestamp of the caller's choosing (a part rebased to start at 0).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from hauler.errors import BadRequest, InvalidResponse

SIGNATURE = b"FLV"
HEADER_BYTES = 9
TAG_HEADER_BYTES = 11
PREVIOUS_SIZE_BYTES = 4
# A tag's data size has 3 bytes: no tag is larger than this.
MAX_TAG_DATA_BYTES = 2**24 - 1
# A header may declare itself longer than 9 bytes (the spec allows it); more is not FLV.
MAX_HEADER_BYTES = 1024
_FLAG_AUDIO = 0x04
_FLAG_VIDEO = 0x01
# The tag type's upper bits: 0x20 marks an encrypted tag (FLV 10.1's "filter"), 0xC0 reserved.
_TYPE_MASK = 0x1F
_FILTERED = 0x20
_KEYFRAME = 1
_AVC, _HEVC = 7, 12  # video codec ids that carry an AVCPacketType (12: the HEVC extension)
_AAC = 10
_EX_HEADER = 0x80  # enhanced RTMP: FourCC video with a packet type in the low 4 bits
_SEQUENCE_START = 0
_ON_METADATA = b"\x02\x00\x0aonMetaData"  # AMF0 string "onMetaData"
# onMetaData's numbers that describe the whole stream, not a part of it: an AMF0 property
# name (2-byte length, the name), then the number marker 0x00 and an 8-byte double.
_STREAM_TOTALS = (b"\x00\x08duration\x00", b"\x00\x08filesize\x00")
_AMF_NUMBER_BYTES = 8


class TagType(IntEnum):
    """What an FLV tag holds."""

    AUDIO = 8
    VIDEO = 9
    SCRIPT = 18


@dataclass(frozen=True, slots=True)
class FlvHeader:
    """The stream's header: which kinds of tags it announces."""

    has_audio: bool
    has_video: bool


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One complete tag: its type, timestamp (milliseconds, the extended byte included) and
    data. ``is_keyframe``: a video key frame; ``is_sequence_header``: the decoder's
    configuration (an AVC/HEVC sequence header, an AAC AudioSpecificConfig), which every part
    must carry before its first frame."""

    kind: TagType
    timestamp_ms: int
    data: bytes

    @property
    def is_keyframe(self) -> bool:
        """A video key frame (a sequence header is marked a key frame too: see is_media)."""
        if self.kind is not TagType.VIDEO or not self.data:
            return False
        return (self.data[0] >> 4) & 0x07 == _KEYFRAME

    @property
    def is_sequence_header(self) -> bool:
        """The AVC/HEVC or AAC decoder configuration (not a frame)."""
        data = self.data
        if self.kind is TagType.VIDEO and data:
            if data[0] & _EX_HEADER:
                return data[0] & 0x0F == _SEQUENCE_START
            return data[0] & 0x0F in (_AVC, _HEVC) and len(data) > 1 and data[1] == 0
        if self.kind is TagType.AUDIO and len(data) > 1:
            return data[0] >> 4 == _AAC and data[1] == 0
        return False

    @property
    def is_metadata(self) -> bool:
        """A script tag named ``onMetaData``."""
        return self.kind is TagType.SCRIPT and self.data.startswith(_ON_METADATA)

    @property
    def is_media(self) -> bool:
        """An audio or video frame (neither a script tag nor a sequence header)."""
        return self.kind is not TagType.SCRIPT and not self.is_sequence_header


class FlvReader:
    """Reads one FLV stream from its chunks: ``feed`` each chunk, get the tags it completed.

    Holds at most one incomplete tag (under 16 MiB) between chunks. ``header`` is None until
    the stream's header has arrived.
    """

    def __init__(self) -> None:
        self.header: FlvHeader | None = None
        self.tags_read = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[FlvTag]:
        """Take the next bytes of the stream: the tags now complete, in order."""
        self._buffer += data
        tags: list[FlvTag] = []
        if self.header is None and not self._read_header():
            return tags
        while (tag := self._read_tag()) is not None:
            tags.append(tag)
        return tags

    def _read_header(self) -> bool:
        """Consume the header and PreviousTagSize0 once they are here; False until then."""
        buffer = self._buffer
        if buffer[: len(SIGNATURE)] != SIGNATURE[: len(buffer)]:
            raise BadRequest(f"not an FLV stream (it begins {bytes(buffer[:8])!r})")
        if len(buffer) < HEADER_BYTES:
            return False
        version, flags, size = buffer[3], buffer[4], int.from_bytes(buffer[5:9])
        if version != 1 or not HEADER_BYTES <= size <= MAX_HEADER_BYTES:
            raise BadRequest(f"not an FLV stream (version {version}, header of {size} bytes)")
        if len(buffer) < size + PREVIOUS_SIZE_BYTES:
            return False
        # PreviousTagSize0 should be 0; readers (ffmpeg's too) ignore it, and so does this one.
        self.header = FlvHeader(bool(flags & _FLAG_AUDIO), bool(flags & _FLAG_VIDEO))
        del buffer[: size + PREVIOUS_SIZE_BYTES]
        return True

    def _read_tag(self) -> FlvTag | None:
        """The next complete tag and its trailing size, consumed; None until it is all here."""
        buffer = self._buffer
        if len(buffer) < TAG_HEADER_BYTES:
            return None
        kind = self._tag_type(buffer[0])
        size = int.from_bytes(buffer[1:4])
        end = TAG_HEADER_BYTES + size
        if len(buffer) < end + PREVIOUS_SIZE_BYTES:
            return None
        timestamp = int.from_bytes(buffer[4:7]) | buffer[7] << 24
        tag = FlvTag(kind, timestamp, bytes(buffer[TAG_HEADER_BYTES:end]))
        self._check_previous_size(end)
        del buffer[: end + PREVIOUS_SIZE_BYTES]
        self.tags_read += 1
        return tag

    def _tag_type(self, byte: int) -> TagType:
        if byte & _FILTERED:
            raise BadRequest("the FLV stream is encrypted: not recorded")
        try:
            return TagType(byte & _TYPE_MASK)
        except ValueError:
            raise InvalidResponse(
                f"the FLV stream turned to garbage after {self.tags_read} tags "
                f"(a tag of type {byte})"
            ) from None

    def _check_previous_size(self, tag_bytes: int) -> None:
        """The PreviousTagSize after a tag must repeat the tag's size: a mismatch is a stream
        out of step (garbage, or bytes lost)."""
        found = int.from_bytes(self._buffer[tag_bytes : tag_bytes + PREVIOUS_SIZE_BYTES])
        if found != tag_bytes:
            raise InvalidResponse(
                f"the FLV stream is out of step after {self.tags_read} tags "
                f"(PreviousTagSize {found}, expected {tag_bytes})"
            )


def without_totals(metadata: FlvTag) -> FlvTag:
    """``onMetaData`` with its ``duration`` and ``filesize`` set to 0 (unknown, as a live
    stream says): a part is not the stream those describe, and a reader given 0 measures the
    file (ffprobe reads its last tag) instead of believing the encoder's ``-t``."""
    data = bytearray(metadata.data)
    for name in _STREAM_TOTALS:
        at = data.find(name)
        if at >= 0 and at + len(name) + _AMF_NUMBER_BYTES <= len(data):
            start = at + len(name)
            data[start : start + _AMF_NUMBER_BYTES] = bytes(_AMF_NUMBER_BYTES)  # 0.0
    return FlvTag(metadata.kind, metadata.timestamp_ms, bytes(data))


def header_bytes(has_audio: bool, has_video: bool) -> bytes:
    """An FLV header announcing audio and/or video, with its PreviousTagSize0."""
    flags = (_FLAG_AUDIO if has_audio else 0) | (_FLAG_VIDEO if has_video else 0)
    return SIGNATURE + struct.pack(">BBI", 1, flags, HEADER_BYTES) + bytes(PREVIOUS_SIZE_BYTES)


def tag_bytes(tag: FlvTag, timestamp_ms: int) -> bytes:
    """``tag`` as FLV bytes at ``timestamp_ms`` (clamped to FLV's unsigned 32 bits), with its
    trailing PreviousTagSize."""
    size = len(tag.data)
    if size > MAX_TAG_DATA_BYTES:
        raise ValueError(f"an FLV tag holds at most {MAX_TAG_DATA_BYTES} bytes, not {size}")
    timestamp = min(max(0, timestamp_ms), 2**32 - 1)
    head = bytes((tag.kind,)) + size.to_bytes(3) + (timestamp & 0xFFFFFF).to_bytes(3)
    head += bytes((timestamp >> 24,)) + bytes(3)
    return head + tag.data + (TAG_HEADER_BYTES + size).to_bytes(4)
