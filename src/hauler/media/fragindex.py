"""yt-dlp's fragment index (``NAME.ytdl``), kept in step with the partial (``NAME.part``), so that
a download killed at any moment resumes at the next fragment with every fragment once.

yt-dlp appends fragments in order to ``NAME.part`` and then records in ``NAME.ytdl`` the index of
the last one appended; a new run skips the fragments up to it. Its own bookkeeping is not safe
against a kill, and with concurrent fragment downloads not even without one:

- the index it writes is ``ctx['fragment_index']``, which the threads that download fragments
  also set, to the count of fragments *downloaded*, as each finishes (``frag_progress_hook`` of
  ``FragmentFD._start_frag_download``). When one finishes between the append and the write,
  the index runs ahead of the partial and a resume leaves a hole (measured with 4 threads on
  a 40-fragment VOD: 1 to 4 of the 40 writes were ahead);
- a fragment thread that gives up closes the partial under the appending thread, whose failed
  append is then recorded as done (and its ``ValueError`` escapes instead of the fragment's
  own error);
- ``NAME.ytdl`` is rewritten in place (a kill can leave it empty), after the append (a kill
  between the two appends that fragment again), and removed before ``NAME.part`` is renamed
  at the end; a partial without a readable index gets the whole video appended to it, because
  yt-dlp opens ``NAME.part`` for appending before it decides to start over.

So here the index is our count of the appends that succeeded, written atomically together with
the size of ``NAME.part`` they add up to (a key yt-dlp ignores); before a run, ``reconcile`` cuts
off what was appended after the last record and starts over from nothing when the record is
missing or does not match the partial.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

# Our keys in yt-dlp's ctx: the fragments in the partial (resumed ones too) and its size, both
# counted by the appends that succeeded (a failed append may have written part of a fragment).
_APPENDED = "hauler_appended"
_PART_BYTES = "hauler_part_bytes"
_LEDGER_KEY = "hauler"


def keep_in_step(fd: Any) -> None:
    """Make the yt-dlp fragment downloader ``fd`` record only the appends that succeeded, with
    the partial's size after them, atomically (its methods, overridden on the instance)."""
    prepare: Callable[[dict[str, Any]], None] = fd._prepare_frag_download

    def prepare_frag_download(ctx: dict[str, Any]) -> None:
        prepare(ctx)
        # No fragment thread runs yet: this is where the run resumes.
        ctx[_APPENDED] = ctx["fragment_index"]
        ctx[_PART_BYTES] = _size_or_zero(Path(ctx["tmpfilename"]))

    def append_fragment(ctx: dict[str, Any], content: bytes) -> None:
        fragment = ctx.pop("fragment_filename_sanitized")
        stream = ctx["dest_stream"]
        try:
            stream.write(content)
            stream.flush()
        except ValueError:
            if not stream.closed:
                raise
            # A fragment thread gave up and closed the partial under us: its DownloadError
            # ends the run. This fragment stays on disk for the next run, the record as it was.
            return
        ctx[_APPENDED] += 1
        ctx[_PART_BYTES] += len(content)
        if _has_index(fd, ctx):
            write_index(ctx)
        if not fd.params.get("keep_fragments", False):
            fd.try_remove(fragment)

    fd._prepare_frag_download = prepare_frag_download
    fd._append_fragment = append_fragment
    fd._write_ytdl_file = write_index


def write_index(ctx: dict[str, Any]) -> None:
    """Write ``NAME.ytdl`` as yt-dlp reads it, plus the partial's size, by rename."""
    downloader: dict[str, Any] = {
        "current_fragment": {"index": ctx.get(_APPENDED, ctx["fragment_index"])}
    }
    if "extra_state" in ctx:
        downloader["extra_state"] = ctx["extra_state"]
    if ctx.get("fragment_count") is not None:
        downloader["fragment_count"] = ctx["fragment_count"]
    ledger = {"part_bytes": ctx.get(_PART_BYTES, 0)}
    _write_atomically(
        index_path(Path(ctx["filename"])),
        json.dumps({"downloader": downloader, _LEDGER_KEY: ledger}),
    )


def reconcile(path: Path) -> None:
    """Put the partial of ``path`` back in step with its index before yt-dlp resumes it:
    bytes appended after the last record are cut off; a partial whose record is missing,
    unreadable or larger than it is removed with its index (the download starts over)."""
    part = path.with_name(path.name + ".part")
    if path.exists() or not part.exists():
        return  # finished (yt-dlp keeps it) or not begun
    index = index_path(path)
    recorded = _recorded_part_bytes(index)
    size = part.stat().st_size
    if recorded is not None and recorded == size:
        return
    if recorded is not None and recorded < size:
        _log.info("%s: cutting %d bytes appended after the last record", part.name, size - recorded)
        os.truncate(part, recorded)
        return
    _log.info("%s: no usable fragment index, starting over", part.name)
    part.unlink()
    with contextlib.suppress(FileNotFoundError):
        index.unlink()


def index_path(path: Path) -> Path:
    """Where yt-dlp keeps the fragment index of ``path`` (``YoutubeDL.ytdl_filename``)."""
    return path.with_name(path.name + ".ytdl")


def _recorded_part_bytes(index: Path) -> int | None:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        recorded = data[_LEDGER_KEY]["part_bytes"]
        fragment = data["downloader"]["current_fragment"]["index"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    is_count = type(recorded) is int and type(fragment) is int
    return recorded if is_count and recorded >= 0 and fragment >= 0 else None


def _has_index(fd: Any, ctx: dict[str, Any]) -> bool:
    # yt-dlp's FragmentFD.__do_ytdl_file: no index for a live stream or a download to stdout.
    is_file = ctx["tmpfilename"] != "-" and not fd.params.get("_no_ytdl_file")
    return ctx["live"] is not True and is_file


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
