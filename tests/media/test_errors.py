"""The classifier on yt-dlp's real words: error strings recorded from yt-dlp (its source and
users' reports, each cited), as messages and as the exceptions yt-dlp raises around them.

The live runs against the loopback site are in test_extract.py."""

from __future__ import annotations

import pytest
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

from hauler.errors import (
    BadRequest,
    Bannable,
    BotCheck,
    ConnectionFailed,
    ConnectionRefused,
    ErrorClass,
    Forbidden,
    Gone,
    HaulerError,
    NoMedia,
    NotFound,
    Throttled,
    Transient,
)
from hauler.media.errors import MAX_REASON_CHARS, classify, classify_message, clean_reason
from hauler.redact import Redactor

YT_LOGIN_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to "
    "manually pass cookies. Also see  "
    "https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on "
    "effectively exporting YouTube cookies"
)

# (recorded message, expected class, expected clean reason or None for "not checked")
RECORDED: list[tuple[str, type[HaulerError], str | None]] = [
    # github.com/StefanLobbenmeier/youtube-dl-gui/issues/189 (yt-dlp 2025)
    (
        f"ERROR: [youtube] tpUr8xVxj-w: Sign in to confirm you\u2019re not a bot. {YT_LOGIN_HINT}",
        BotCheck,
        "[youtube] tpUr8xVxj-w: Sign in to confirm you\u2019re not a bot. Use "
        "--cookies-from-browser or --cookies for the authentication.",
    ),
    # github.com/liuzhao1225/YouDub-webui/issues/25 (the 2024 wording)
    (
        "ERROR: [youtube] oPGVGckn7kQ: Sign in to confirm you\u2019re not a bot. This helps "
        "protect our community. Learn more",
        BotCheck,
        None,
    ),
    # github.com/Benexl/yt-x/issues/112: a straight apostrophe in the title, curly in the log
    (
        "ERROR: Sign in to confirm you're not a bot.",
        BotCheck,
        "Sign in to confirm you're not a bot.",
    ),
    # github.com/ytdl-org/youtube-dl/issues/24281
    (
        "ERROR: Unable to download webpage: HTTP Error 429: Too Many Requests (caused by "
        "<HTTPError 429: 'Too Many Requests'>); please report this issue on https://yt-dl.org/bug "
        ". Make sure you are using the latest version; type  youtube-dl -U  to update.",
        BotCheck,
        "Unable to download webpage: HTTP Error 429: Too Many Requests",
    ),
    # github.com/nexmoe/VidBee/issues/147
    (
        "ERROR: [Douyin] 7578454393243110691: Fresh cookies (not necessarily logged in) are needed",
        BotCheck,
        "[Douyin] 7578454393243110691: Fresh cookies (not necessarily logged in) are needed",
    ),
    # yt_dlp/extractor/bilibili.py
    (
        "ERROR: [BiliBili] BV1xx: Request is blocked by server (412), please wait and try later.",
        BotCheck,
        None,
    ),
    # yt_dlp/extractor/yandexmusic.py
    (
        "ERROR: [yandexmusic:track] 1: YandexMusic has considered yt-dlp requests automated and "
        "asks you to solve a CAPTCHA. You can either wait for some time until unblocked",
        BotCheck,
        None,
    ),
    # yt_dlp/extractor/generic.py
    (
        "ERROR: [generic] page: Got HTTP Error 403 caused by Cloudflare anti-bot challenge; try "
        'again with  --extractor-args "generic:impersonate"',
        BotCheck,
        None,
    ),
    # yt_dlp/extractor/youtube/_video.py
    (
        "ERROR: [youtube] abc: This content isn't available, try again later. The current session "
        "has been rate-limited by YouTube for up to an hour.",
        BotCheck,
        None,
    ),
    # github.com/vididataset/VIDI/issues/1
    (
        "ERROR: Video unavailable\nThis video has been removed by the uploader.",
        Gone,
        "Video unavailable. This video has been removed by the uploader.",
    ),
    (
        "ERROR: Video unavailable\nThis video is no longer available because the YouTube account "
        "associated with this video has been terminated.",
        Gone,
        None,
    ),
    # github.com/jely2002/youtube-dl-gui/issues/554
    (
        "ERROR: [youtube] Saix8wDp2iA: This video has been removed for violating YouTube's Terms "
        "of Service",
        Gone,
        None,
    ),
    # github.com/gregcman/lem-opengl/issues/3
    (
        "ERROR: Private video\nSign in if you've been granted access to this video",
        Forbidden,
        "Private video. Sign in if you've been granted access to this video",
    ),
    # github.com/KurtBestor/Hitomi-Downloader/issues/4948
    (
        "[youtube] ltcd1B8WyTM: Video unavailable. The uploader has not made this video "
        "available in your country",
        Forbidden,
        None,
    ),
    # github.com/ytdl-org/youtube-dl/issues/22188
    (
        "ERROR: Sign in to confirm your age\nThis video may be inappropriate for some users.",
        Forbidden,
        "Sign in to confirm your age. This video may be inappropriate for some users.",
    ),
    # github.com/chelaxian/tg-ytdlp-bot/issues/176
    (
        "ERROR: [youtube] 9rdJJMAd-PA: Requested format is not available. Use --list-formats for "
        "a list of available formats",
        BadRequest,
        None,
    ),
    ("ERROR: Unsupported URL: https://example.com/page", BadRequest, None),
    # github.com/yausername/youtubedl-android/issues/89
    (
        "ERROR: Unable to download webpage: <urlopen error [Errno 104] Connection reset by peer> "
        "(caused by URLError(ConnectionResetError(104, 'Connection reset by peer')))",
        ConnectionFailed,
        "Unable to download webpage: <urlopen error [Errno 104] Connection reset by peer>",
    ),
    # github.com/ytdl-org/youtube-dl/issues/14849
    (
        "ERROR: Unable to download webpage: [Errno 104] Connection reset by peer (caused by "
        "ConnectionResetError(104, 'Connection reset by peer'))",
        ConnectionFailed,
        None,
    ),
    (
        "ERROR: [generic] x: Unable to download webpage: <urlopen error [Errno 111] Connection "
        "refused>",
        ConnectionRefused,
        None,
    ),
    (
        "ERROR: [generic] x: Unable to download webpage: The read operation timed out",
        ConnectionFailed,
        None,
    ),
    ("ERROR: Unable to download webpage: HTTP Error 503: Service Unavailable", Throttled, None),
    ("ERROR: Unable to download webpage: HTTP Error 500: Internal Server Error", Transient, None),
    ("ERROR: Unable to download webpage: HTTP Error 404: Not Found", NotFound, None),
]


def _as_raised(message: str) -> DownloadError:
    """The exception yt-dlp raises for ``message``: an ExtractorError (as ``expected``) wrapped
    in a DownloadError by YoutubeDL.trouble."""
    inner = ExtractorError(message.removeprefix("ERROR: "), expected=True)
    return DownloadError(message, (type(inner), inner, None))


@pytest.mark.parametrize(("message", "expected", "reason"), RECORDED)
def test_recorded_messages(message: str, expected: type[HaulerError], reason: str | None) -> None:
    for error in (classify_message(message), classify(_as_raised(message))):
        assert type(error) is expected, error
        assert "\n" not in error.message and not error.message.startswith("ERROR")
        assert "(caused by" not in error.message and "please report" not in error.message
        if reason is not None:
            assert error.message == reason


def test_bot_checks_are_bannable_and_name_the_account() -> None:
    error = classify_message(RECORDED[0][0])
    assert isinstance(error, Bannable)
    assert error.error_class is ErrorClass.BOT_CHECK
    assert error.resource == "account"


def test_types_under_the_message_decide() -> None:
    geo = GeoRestrictedError("This video is not available from your location", countries=["DE"])
    assert type(classify(DownloadError(f"ERROR: {geo}", (type(geo), geo, None)))) is Forbidden
    unsupported = UnsupportedError("https://example.com/")
    assert type(classify(unsupported)) is NoMedia
    refused = TransportError(cause=ConnectionRefusedError(111, "Connection refused"))
    wrapped = ExtractorError("Unable to download webpage: boom", cause=refused, expected=True)
    assert type(classify(wrapped)) is ConnectionRefused
    timeout = TransportError(cause=TimeoutError("timed out"))
    assert type(classify(ExtractorError("x", cause=timeout))) is ConnectionFailed
    assert type(classify(OSError(101, "Network is unreachable"))) is ConnectionFailed


def test_reasons_are_one_clean_line_without_secrets() -> None:
    message = (
        "\x1b[0;31mERROR:\x1b[0m [generic] video: Unable to download webpage: HTTP Error 410: "
        "Gone from http://user:hunter2@example.com/v?token=abc (caused by <HTTPError 410>)"
    )
    reason = clean_reason(message, Redactor(["abc123token"]))
    assert (
        reason
        == "Unable to download webpage: HTTP Error 410: Gone from http://user:***@example.com/v?token=***"
    )
    assert type(classify_message(message)) is Gone
    assert clean_reason(
        "ERROR: [generic] x: key abc123token leaked", Redactor(["abc123token"])
    ) == ("key *** leaked")
    assert clean_reason("ERROR: [youtube] id: ok") == "[youtube] id: ok"  # a site's tag stays
    assert len(clean_reason("ERROR: " + "x" * 5000)) == MAX_REASON_CHARS
    assert clean_reason("ERROR: bell\x07 and \x9b") == "bell\\x07 and \\x9b"
    assert clean_reason("") == "yt-dlp failed without a reason"
