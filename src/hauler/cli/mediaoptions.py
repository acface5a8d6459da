"""The media options ``get`` and ``add`` share (yt-dlp's names), and the ``MediaOptions`` they
make: given any of them, every job of the command carries them (a JSON line's own win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hauler.models import JobKind, JobSpec, MediaOptions

Kind = Annotated[
    JobKind,
    typer.Option("--kind", help="auto (a page or manifest yt-dlp knows is media), file, or media."),
]
Format = Annotated[
    str | None,
    typer.Option(
        "-f",
        "--format",
        help="yt-dlp format (default bv*+ba/b), or best, worst, audio, a height (720).",
    ),
]
Template = Annotated[
    str | None,
    typer.Option(
        "--template", help="yt-dlp output template (default '%(title)s [%(id)s].%(ext)s')."
    ),
]
MergeFormat = Annotated[
    str | None,
    typer.Option("--merge-output-format", help="Container of merged video+audio (mp4, mkv…)."),
]
InfoJson = Annotated[
    bool, typer.Option("--info-json", help="Write NAME.info.json beside each video.")
]
MediaCookies = Annotated[
    Path | None,
    typer.Option("--cookies", help="Netscape cookies.txt for media pages (passed to yt-dlp)."),
]

PlaylistItems = Annotated[
    str | None,
    typer.Option("--playlist-items", help="Which entries of a playlist: 1,3-5 (yt-dlp's syntax)."),
]
MaxDownloads = Annotated[
    int | None,
    typer.Option("--max-downloads", min=1, help="At most this many entries of a playlist."),
]

WriteSubs = Annotated[
    bool, typer.Option("--write-subs", help="Write subtitles beside each video (NAME.LANG.vtt).")
]
SubLangs = Annotated[
    str | None,
    typer.Option("--sub-langs", help="Subtitle languages, comma-separated regexes (default en.*)."),
]
WriteThumbnail = Annotated[
    bool, typer.Option("--write-thumbnail", help="Write the thumbnail beside each video.")
]
ListFormats = Annotated[
    bool,
    typer.Option(
        "--list-formats", help="Print each URL's formats (the IDs -f takes); download nothing."
    ),
]


def media_fields(
    *,
    format_text: str | None,
    template: str | None,
    merge_format: str | None,
    info_json: bool,
    cookies: Path | None,
    playlist_items: str | None = None,
    max_downloads: int | None = None,
    write_subs: bool = False,
    sub_langs: str | None = None,
    write_thumbnail: bool = False,
) -> dict[str, Any] | None:
    """The ``media`` field of the jobs, or None when no media option was given; a usage error
    (exit 2) naming the option for a format that is not one."""
    from hauler.errors import BadRequest
    from hauler.media.formats import format_spec

    if format_text is not None:
        try:
            format_spec(format_text)
        except BadRequest as exc:
            raise typer.BadParameter(exc.message, param_hint="'--format'") from None
    if cookies is not None and not cookies.is_file():
        raise typer.BadParameter(f"cannot read {cookies}", param_hint="'--cookies'")
    fields: dict[str, Any] = {
        "format": format_text,
        "template": template,
        "merge_output_format": merge_format,
        "info_json": info_json or None,
        "cookies": str(cookies.resolve()) if cookies is not None else None,
        "playlist_items": playlist_items,
        "max_downloads": max_downloads,
        "write_subs": write_subs or None,
        "sub_langs": _languages(sub_langs),
        "write_thumbnail": write_thumbnail or None,
    }
    given = {key: value for key, value in fields.items() if value is not None}
    return given or None


def with_media(specs: list[JobSpec], kind: JobKind, media: dict[str, Any] | None) -> list[JobSpec]:
    """``specs`` of ``kind`` (unless a JSON line named its own) with ``media`` (unless a JSON
    line carried its own media options)."""
    if kind is JobKind.AUTO and media is None:
        return specs
    options = MediaOptions(**media) if media is not None else None
    updated = []
    for spec in specs:
        update: dict[str, Any] = {}
        if kind is not JobKind.AUTO and spec.kind is JobKind.AUTO:
            update["kind"] = kind
        if options is not None and spec.media is None:
            update["media"] = options
        updated.append(spec.model_copy(update=update) if update else spec)
    return updated


def _languages(text: str | None) -> tuple[str, ...] | None:
    """``en,de.*`` as ``("en", "de.*")``; None when not given."""
    if not text:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())
