"""``hauler get --list-formats``: the formats yt-dlp finds for each URL, as a table (or JSON),
without downloading anything. A format's ID is what ``-f`` takes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from hauler.errors import HaulerError
from hauler.exitcodes import ExitCode, exit_status
from hauler.models import JobSpec, MediaOptions
from hauler.redact import Redactor, json_text, printable

COLUMNS = ("id", "ext", "resolution", "fps", "vcodec", "acodec", "protocol", "size")


def format_rows(info: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per format of ``info``, worst first (yt-dlp's order), as the table shows them."""
    return [
        {
            "id": fmt.get("format_id"),
            "ext": fmt.get("ext"),
            "resolution": _resolution(fmt),
            "fps": fmt.get("fps"),
            "vcodec": fmt.get("vcodec"),
            "acodec": fmt.get("acodec"),
            "protocol": fmt.get("protocol"),
            "size": fmt.get("filesize") or fmt.get("filesize_approx"),
        }
        for fmt in info.get("formats") or [info]
    ]


def _resolution(fmt: dict[str, Any]) -> str | None:
    if fmt.get("vcodec") == "none":
        return "audio only"
    width, height = fmt.get("width"), fmt.get("height")
    if width and height:
        return f"{width}x{height}"
    return str(fmt.get("resolution")) if fmt.get("resolution") else None


def run(specs: Sequence[JobSpec], proxy: str | None, as_json: bool, redact: Redactor) -> int:
    """Print the formats of every spec; the exit status (by the failures' classes)."""
    return asyncio.run(_run(specs, proxy, as_json, redact))


async def _run(specs: Sequence[JobSpec], proxy: str | None, as_json: bool, redact: Redactor) -> int:
    from pathlib import Path

    from hauler.media.extract import ExtractOptions, extract
    from hauler.media.formats import format_spec

    records: list[dict[str, Any]] = []
    failed: list[str] = []
    for spec in specs:
        media = spec.media or MediaOptions()
        options = ExtractOptions(
            format_spec=format_spec(media.format),
            proxy=proxy,
            cookie_file=Path(media.cookies) if media.cookies else None,
            headers=spec.headers,
        )
        try:
            info = await extract(spec.url, options)
        except HaulerError as exc:
            failed.append(str(exc.error_class))
            line = f"failed {redact.url(spec.url)}: {exc.error_class}: {redact.text(exc.message)}"
            print(printable(line), file=sys.stderr)
            records.append({"url": redact.url(spec.url), "ok": False, "formats": []})
            continue
        rows = format_rows(info)
        records.append(
            {"url": redact.url(spec.url), "ok": True, "title": info.get("title"), "formats": rows}
        )
        if not as_json:
            _print_table(spec.url, info, rows, redact)
    if as_json:
        print(json_text(records))
    return int(exit_status(failed)) if failed else int(ExitCode.OK)


def _print_table(
    url: str, info: dict[str, Any], rows: list[dict[str, Any]], redact: Redactor
) -> None:
    console = Console(highlight=False)
    title = printable(f"{info.get('title') or ''} ({redact.url(url)})")
    table = Table(*COLUMNS, title=title, box=None, title_justify="left")
    for row in rows:
        table.add_row(*(printable("" if row[c] is None else str(row[c])) for c in COLUMNS))
    console.print(table)
