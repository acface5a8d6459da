"""The live options ``record`` and ``add`` share, and the ``LiveOptions`` they make.

Durations are written as people write them (``30s``, ``10m``, ``6h``); a bad one is a one-line
usage error (exit 2) naming its option, as a ``--notify-url`` that is not http(s) is. Defaults
are the model's (parts of 30 minutes, polls every 30 s, 60 s of offline grace): ``live_fields``
returns None when no live option was given, so ``add`` stores nothing it was not asked.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from hauler.cli.app import usage_error
from hauler.models import LiveOptions


class Container(StrEnum):
    """What each part is written as: MPEG-TS (playable even after a kill -9), or TS remuxed
    to Matroska once the part is closed."""

    TS = "ts"
    MKV = "mkv"


class Remux(StrEnum):
    """The container each closed part is remuxed into."""

    MP4 = "mp4"


Split = Annotated[
    str | None,
    typer.Option("--split", help="Media per part: 30s, 10m, 1h (default 30m).", show_default=False),
]
MaxDuration = Annotated[
    str | None,
    typer.Option(
        "--max-duration",
        help="Stop recording after this much: 6h (default: until the stream ends).",
        show_default=False,
    ),
]
Poll = Annotated[
    str | None,
    typer.Option(
        "--poll",
        help="How often a room that is not live yet is asked again (default 30s).",
        show_default=False,
    ),
]
OfflineGrace = Annotated[
    str | None,
    typer.Option(
        "--offline-grace",
        help="A stream silent for this long has ended (default 60s).",
        show_default=False,
    ),
]
Watch = Annotated[
    bool,
    typer.Option(
        "--watch",
        help="After a session ends, wait for the room's next one and record it too (never "
        "ends by itself).",
    ),
]
ContainerOpt = Annotated[
    Container | None,
    typer.Option(
        "--container",
        help="ts (the default: playable after a crash) or mkv (each closed part remuxed).",
        show_default=False,
    ),
]
RemuxOpt = Annotated[
    Remux | None,
    typer.Option("--remux", help="Remux each closed part into mp4.", show_default=False),
]
NotifyUrl = Annotated[
    str | None,
    typer.Option(
        "--notify-url",
        help="http(s) URL that hears a JSON event when a room goes live and when it ends.",
        show_default=False,
    ),
]
LiveFormat = Annotated[
    str | None,
    typer.Option(
        "-f", "--format", help="Which of a room's streams: best (default), worst, a height (720)."
    ),
]
NOTIFY_SCHEMES = ("http", "https")


def live_fields(
    *,
    split: str | None = None,
    max_duration: str | None = None,
    poll: str | None = None,
    offline_grace: str | None = None,
    watch: bool = False,
    container: Container | None = None,
    remux: Remux | None = None,
    notify_url: str | None = None,
    format_text: str | None = None,
) -> LiveOptions | None:
    """The jobs' ``LiveOptions`` from the options given, or None when none was; a usage error
    (``hauler: ...``, one line, exit 2) naming the option for a value that is not one."""
    fields: dict[str, Any] = {
        "split_s": _duration(split, "--split"),
        "max_duration_s": _duration(max_duration, "--max-duration"),
        "poll_s": _duration(poll, "--poll"),
        "offline_grace_s": _duration(offline_grace, "--offline-grace", may_be_zero=True),
        "watch": watch or None,
        "remux": _remux(container, remux),
        "notify_url": _notify_url(notify_url),
        "format": _format(format_text),
    }
    given = {key: value for key, value in fields.items() if value is not None}
    return LiveOptions(**given) if given else None


def with_format(live: LiveOptions | None, format_text: str) -> LiveOptions:
    """``live`` (or the defaults) recording the room's stream ``format_text`` picks."""
    given = live.model_dump(exclude_unset=True) if live is not None else {}
    return LiveOptions(**{**given, "format": _format(format_text)})


def _duration(text: str | None, option: str, *, may_be_zero: bool = False) -> float | None:
    """``text`` in seconds (None when not given); a usage error unless it is a duration over
    zero (or zero, when ``may_be_zero``)."""
    from hauler.units import parse_duration

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        usage_error(f"{option}: {exc}")
    if seconds < 0 or (seconds == 0 and not may_be_zero):
        usage_error(f"{option}: must be more than 0 (examples: 30s, 15m, 2h)")
    return seconds


def _remux(container: Container | None, remux: Remux | None) -> str | None:
    """The container closed parts are remuxed into: None keeps MPEG-TS."""
    if container is Container.MKV and remux is not None:
        usage_error("--container mkv and --remux mp4: choose one container for the parts")
    if remux is not None:
        return remux.value
    return "mkv" if container is Container.MKV else None


def _notify_url(url: str | None) -> str | None:
    """``url`` when it is http(s) with a host; the error never repeats it (it may hold a
    token)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url.strip())
        is_usable = parts.scheme.lower() in NOTIFY_SCHEMES and bool(parts.hostname)
        _ = parts.port
    except ValueError:
        is_usable = False
    if not is_usable:
        usage_error("--notify-url: expected an http:// or https:// URL with a host")
    return url.strip()


def _format(text: str | None) -> str | None:
    """``text`` when yt-dlp's format syntax (or a shortcut) accepts it."""
    from hauler.errors import BadRequest
    from hauler.media.formats import format_spec

    if text is None:
        return None
    try:
        format_spec(text)
    except BadRequest as exc:
        usage_error(f"--format: {exc.message}")
    return text
