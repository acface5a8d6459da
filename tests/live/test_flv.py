"""The FLV reader on a real ffmpeg FLV file and on made tags: the same tags however the bytes
are cut into chunks, written back byte for byte, the extended timestamp byte, key frames and
the AVC/HEVC/AAC sequence headers told apart, and what is not FLV refused with the
taxonomy's errors (a body that is not FLV at all: BadRequest; garbage later: InvalidResponse).
"""

from __future__ import annotations

import itertools
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hauler.errors import BadRequest, InvalidResponse
from hauler.live.flv import (
    FlvReader,
    FlvTag,
    TagType,
    header_bytes,
    tag_bytes,
    without_totals,
)

FPS = 25


@pytest.fixture(scope="module")
def flv_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """3 s of testsrc + sine as FLV (H.264 with a key frame a second, AAC), made by ffmpeg."""
    path = tmp_path_factory.mktemp("flv") / "three.flv"
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"),
            *("-f", "lavfi", "-i", f"testsrc=size=160x120:rate={FPS}"),
            *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "3"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-b:a", "32k", "-f", "flv", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def read_all(data: bytes, cuts: list[int] | None = None) -> tuple[FlvReader, list[FlvTag]]:
    """Feed ``data`` cut at ``cuts`` (offsets): the reader and every tag it gave."""
    reader = FlvReader()
    tags: list[FlvTag] = []
    edges = [0, *sorted(set(cuts or [])), len(data)]
    for start, end in itertools.pairwise(edges):
        tags += reader.feed(data[start:end])
    return reader, tags


def test_ffmpegs_flv_reads_as_metadata_sequence_headers_then_frames(flv_file: bytes) -> None:
    reader, tags = read_all(flv_file)
    assert reader.header is not None and reader.header.has_audio and reader.header.has_video
    metadata, video_header, audio_header = tags[:3]
    assert metadata.kind is TagType.SCRIPT and metadata.is_metadata
    assert video_header.kind is TagType.VIDEO and video_header.is_sequence_header
    assert audio_header.kind is TagType.AUDIO and audio_header.is_sequence_header
    frames = tags[3:]
    assert all(tag.is_media and not tag.is_sequence_header for tag in frames)
    # AVC packet type 1: coded frames (ffmpeg ends the file with an end of sequence, type 2).
    video = [tag for tag in frames if tag.kind is TagType.VIDEO and tag.data[1] == 1]
    keyframes = [tag.timestamp_ms for tag in video if tag.is_keyframe]
    assert len(video) == 3 * FPS
    # -g 25: a key frame every second (the first frame's timestamp may be a frame late).
    assert [round(ms / 1000) for ms in keyframes] == [0, 1, 2]
    assert 2900 <= frames[-1].timestamp_ms <= 3100
    assert len({tag.kind for tag in frames}) == 2


def test_tags_written_back_are_the_file_byte_for_byte(flv_file: bytes) -> None:
    _, tags = read_all(flv_file)
    written = header_bytes(True, True) + b"".join(tag_bytes(t, t.timestamp_ms) for t in tags)
    assert written == flv_file


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_cut_into_chunks_gives_the_same_tags(flv_file: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(1, len(flv_file) - 1), max_size=40))
    # Cuts anywhere, and some in the first bytes (inside the header and the first tag).
    cuts += data.draw(st.lists(st.integers(1, 40), max_size=6))
    _, whole = read_all(flv_file)
    _, pieces = read_all(flv_file, cuts)
    assert pieces == whole


def test_byte_by_byte_no_tag_until_it_is_complete(flv_file: bytes) -> None:
    reader = FlvReader()
    first_tag_end = 9 + 4 + 11 + int.from_bytes(flv_file[14:17]) + 4
    given_at = [at for at in range(first_tag_end) if reader.feed(flv_file[at : at + 1])]
    assert given_at == [first_tag_end - 1]
    assert reader.header is not None and reader.tags_read == 1


@pytest.mark.parametrize(
    "timestamp_ms", [0, 1, 0xFFFFFF, 0x1000000, 0x12345678, 2**31 + 5, 2**32 - 1]
)
def test_the_extended_byte_carries_the_timestamps_upper_8_bits(timestamp_ms: int) -> None:
    tag = FlvTag(TagType.AUDIO, 0, b"\xaf\x01abc")
    raw = tag_bytes(tag, timestamp_ms)
    assert raw[4:8] == (timestamp_ms & 0xFFFFFF).to_bytes(3) + bytes((timestamp_ms >> 24,))
    _, tags = read_all(header_bytes(True, False) + raw)
    assert tags == [FlvTag(TagType.AUDIO, timestamp_ms, b"\xaf\x01abc")]


def test_a_timestamp_outside_32_bits_is_clamped() -> None:
    tag = FlvTag(TagType.VIDEO, 0, b"\x27\x01")
    _, low = read_all(header_bytes(False, True) + tag_bytes(tag, -40))
    _, high = read_all(header_bytes(False, True) + tag_bytes(tag, 2**33))
    assert low[0].timestamp_ms == 0 and high[0].timestamp_ms == 2**32 - 1


@pytest.mark.parametrize(
    ("kind", "data", "is_keyframe", "is_sequence_header"),
    [
        (TagType.VIDEO, b"\x17\x00\x00\x00\x00", True, True),  # AVC sequence header
        (TagType.VIDEO, b"\x17\x01\x00\x00\x00", True, False),  # AVC key frame
        (TagType.VIDEO, b"\x27\x01\x00\x00\x00", False, False),  # AVC inter frame
        (TagType.VIDEO, b"\x1c\x00\x00\x00\x00", True, True),  # HEVC (codec 12) header
        (TagType.VIDEO, b"\x2c\x01\x00\x00\x00", False, False),  # HEVC inter frame
        (TagType.VIDEO, b"\x90hvc1", True, True),  # enhanced RTMP: SequenceStart
        (TagType.VIDEO, b"\x91hvc1", True, False),  # enhanced RTMP: coded frames
        (TagType.VIDEO, b"\xa1av01", False, False),  # enhanced RTMP: inter frame
        (TagType.VIDEO, b"\x12\x00", True, False),  # Sorenson H.263: no packet type
        (TagType.AUDIO, b"\xaf\x00\x12\x10", False, True),  # AAC AudioSpecificConfig
        (TagType.AUDIO, b"\xaf\x01\x21\x00", False, False),  # AAC raw frame
        (TagType.AUDIO, b"\x2f\x00\xff\xfb", False, False),  # MP3: no sequence header
        (TagType.SCRIPT, b"\x02\x00\x0aonMetaData\x08", False, False),
    ],
)
def test_key_frames_and_sequence_headers_are_told_apart(
    kind: TagType, data: bytes, is_keyframe: bool, is_sequence_header: bool
) -> None:
    _, (tag,) = read_all(header_bytes(True, True) + tag_bytes(FlvTag(kind, 0, data), 0))
    assert (tag.is_keyframe, tag.is_sequence_header) == (is_keyframe, is_sequence_header)
    assert tag.is_media == (kind is not TagType.SCRIPT and not is_sequence_header)


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html>",  # a room's page, not its stream
        b"#EXTM3U\n",
        b"FLX\x01\x05",
        b"FLV\x02\x05\x00\x00\x00\x09",  # version 2
        b"FLV\x01\x05\x00\x00\x00\x05",  # a header shorter than 9 bytes
        b"FLV\x01\x05\x00\x10\x00\x00",  # a header of 1 MiB
    ],
)
def test_a_body_that_is_not_flv_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        FlvReader().feed(body)


def test_a_short_beginning_waits_for_more_instead_of_failing() -> None:
    reader = FlvReader()
    assert reader.feed(b"FL") == [] and reader.header is None
    assert reader.feed(b"V\x01\x05\x00\x00\x00\x09\x00\x00") == [] and reader.header is None
    assert reader.feed(b"\x00\x00") == [] and reader.header is not None


def valid_stream() -> bytes:
    return header_bytes(True, True) + tag_bytes(FlvTag(TagType.AUDIO, 7, b"\xaf\x01x"), 7)


def test_garbage_after_good_tags_is_an_invalid_response() -> None:
    reader = FlvReader()
    assert len(reader.feed(valid_stream())) == 1
    with pytest.raises(InvalidResponse, match="after 1 tags"):
        reader.feed(b"\x07" + bytes(20))  # no such tag type


def test_a_previous_tag_size_out_of_step_is_an_invalid_response() -> None:
    broken = bytearray(valid_stream())
    broken[-1] ^= 0x01
    with pytest.raises(InvalidResponse, match="out of step"):
        FlvReader().feed(bytes(broken))


def test_an_encrypted_tag_is_refused() -> None:
    raw = bytearray(tag_bytes(FlvTag(TagType.VIDEO, 0, b"\x17\x01"), 0))
    raw[0] |= 0x20
    with pytest.raises(BadRequest, match="encrypted"):
        FlvReader().feed(header_bytes(False, True) + bytes(raw))


def test_metadata_loses_the_streams_duration_and_filesize_only(flv_file: bytes) -> None:
    _, tags = read_all(flv_file)
    metadata = tags[0]
    cleared = without_totals(metadata)
    assert len(cleared.data) == len(metadata.data)
    for name, value in ((b"duration", 0.0), (b"filesize", 0.0), (b"width", 160.0)):
        key = len(name).to_bytes(2) + name + b"\x00"
        at = cleared.data.index(key) + len(key)
        assert struct.unpack(">d", cleared.data[at : at + 8]) == (value,)
    at = metadata.data.index(b"\x00\x08duration\x00") + 11
    assert 2.9 <= struct.unpack(">d", metadata.data[at : at + 8])[0] <= 3.1


def test_a_tag_larger_than_24_bits_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="at most"):
        tag_bytes(FlvTag(TagType.VIDEO, 0, bytes(2**24)), 0)


def test_a_header_alone_reads_as_no_tags() -> None:
    reader, tags = read_all(header_bytes(False, True))
    assert tags == [] and reader.header is not None
    assert (reader.header.has_audio, reader.header.has_video) == (False, True)
