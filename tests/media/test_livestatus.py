"""yt-dlp's "not live" answers as NotLive: its UserNotLive exception (raised and wrapped the way
YoutubeDL wraps it, then classed by extract's classifier) and recorded extractor messages."""

from __future__ import annotations

import pytest
import yt_dlp

from hauler.errors import NotLive, Transient
from hauler.media.errors import classify
from hauler.media.livestatus import not_live, not_live_message, not_live_state, state_of
from hauler.policy.watch import RoomState
from hauler.redact import Redactor

# Messages as yt-dlp reports them (DownloadError's text), from its extractors' sources and
# YouTube's playability reasons.
RECORDED = [
    ("ERROR: [twitch:stream] somechannel: The channel is not currently live", RoomState.OFFLINE),
    ("ERROR: [kick:live] streamer: The channel is not currently live", RoomState.OFFLINE),
    ("ERROR: [youtube:tab] UC123: The channel is not currently live.", RoomState.OFFLINE),
    ("ERROR: [bilibili:live] 123: Room is offline", RoomState.OFFLINE),
    ("ERROR: [afreecatv:live] user: Stream is offline.", RoomState.OFFLINE),
    ("ERROR: [chaturbate] model: Model is offline.", RoomState.OFFLINE),
    ("ERROR: [picarto] user: Streamer is not live", RoomState.OFFLINE),
    ("ERROR: [vimeo] 12: This stream is not live", RoomState.OFFLINE),
    ("ERROR: [youtube] dQw4w9WgXcQ: This live event will begin in 3 hours.", RoomState.UPCOMING),
    ("ERROR: [youtube] dQw4w9WgXcQ: Premieres in 2 days", RoomState.UPCOMING),
    ("ERROR: [eplus] x: This live event will begin at 2026-01-01 20:00 JST", RoomState.UPCOMING),
    ("ERROR: [rumble] x: Livestream has not yet started", RoomState.UPCOMING),
    ("ERROR: [zaiko] x: Stream is offline; scheduled for 2026-01-01 20:00:00", RoomState.UPCOMING),
    ("ERROR: [twitter:spaces] 1: Twitter Space not started yet", RoomState.UPCOMING),
    ("ERROR: [youtube] abc: This live event has ended.", RoomState.ENDED),
    ("ERROR: [stripchat] x: Livestream has ended", RoomState.ENDED),
    ("ERROR: [nhk] x: Not live anymore", RoomState.ENDED),
]
NOT_ABOUT_LIVE = [
    "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
    "ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video",
    "ERROR: Unsupported URL: http://127.0.0.1:8080/room",
    "ERROR: [generic] room: Unable to download webpage: HTTP Error 404: Not Found",
    "ERROR: [youtube] abc: Sign in to confirm you\u2019re not a bot",
    "ERROR: [generic] x: Unable to download webpage: <urlopen error [Errno 111] Connection"
    " refused>",
]


@pytest.mark.parametrize(("message", "state"), RECORDED)
def test_recorded_messages(message: str, state: RoomState) -> None:
    found = not_live_message(message)
    assert isinstance(found, NotLive)
    assert isinstance(found, Transient)  # poll again later
    assert not_live_state(message) is state
    assert state_of(found) is state
    assert not found.message.startswith("ERROR")  # cleaned like every yt-dlp reason


@pytest.mark.parametrize("message", NOT_ABOUT_LIVE)
def test_other_messages_are_not_not_live(message: str) -> None:
    assert not_live_message(message) is None
    assert not_live(yt_dlp.utils.DownloadError(message)) is None


def _as_youtube_dl_raises(inner: Exception) -> yt_dlp.utils.DownloadError:
    """``inner`` wrapped as YoutubeDL.trouble wraps an extractor's error."""
    try:
        raise inner
    except Exception as exc:
        import sys

        return yt_dlp.utils.DownloadError(f"ERROR: [twitch:stream] chan: {exc}", sys.exc_info())


def test_user_not_live_by_type() -> None:
    error = _as_youtube_dl_raises(yt_dlp.utils.UserNotLive(video_id="chan"))
    found = not_live(error)
    assert isinstance(found, NotLive)
    assert "not currently live" in found.message
    assert state_of(found) is RoomState.OFFLINE


def test_user_not_live_with_words_of_its_own_by_type() -> None:
    # An extractor's own wording the patterns do not know: the type still says it.
    error = _as_youtube_dl_raises(yt_dlp.utils.UserNotLive("nobody home", video_id="chan"))
    assert not_live_message(str(error)) is None
    found = not_live(error)
    assert isinstance(found, NotLive)
    assert "nobody home" in found.message


def test_through_extracts_classifier() -> None:
    # What extract raises: the generic classifier's error, from yt-dlp's.
    error = _as_youtube_dl_raises(yt_dlp.utils.UserNotLive(video_id="chan"))
    classified = classify(error)
    assert not isinstance(classified, NotLive)  # the generic classifier does not know it
    try:
        raise classified from error
    except Exception as raised:
        found = not_live(raised)
    assert isinstance(found, NotLive)
    assert not_live(found) is found


def test_secrets_redacted() -> None:
    message = "ERROR: [x] https://u:hunter2@h/room?token=s3cret: Room is offline (token s3cret)"
    found = not_live_message(message, Redactor(["s3cret"]))
    assert found is not None
    assert "hunter2" not in found.message
    assert "s3cret" not in found.message
