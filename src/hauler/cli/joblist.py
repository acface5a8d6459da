"""The job list of ``hauler get``: URLs from the arguments plus an input file or stdin.

Lines are parsed by ``hauler.intake`` (the same rules as ``hauler add``). ``get`` downloads in
the foreground with the user there, so a list with bad lines is refused whole, before anything
is fetched, and every bad line is named with its number (as ``add -i`` names them), not only the
first: one run shows everything to fix.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from pathlib import Path

from hauler import intake
from hauler.models import JobSpec
from hauler.redact import printable, redact_url

# Bad lines named in the error; the rest are counted, so ten thousand bad lines stay readable.
MAX_BAD_LINES_SHOWN = 20


class JobListError(ValueError):
    """An input line or file the user must fix; the message names the file and line(s)."""


def parse_job_lines(lines: Iterable[str], source: str) -> list[JobSpec]:
    """Specs from input lines: blank lines and ``#`` comments are skipped, a line starting
    with ``{`` is a JSON object of ``JobSpec`` fields, any other line is one URL.

    Raises ``JobListError`` listing every bad line (``SOURCE line N: reason``, one a line).
    """
    specs: list[JobSpec] = []
    bad: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            spec = intake.parse_line(line, {})
        except ValueError as exc:
            bad.append(f"{source} line {number}: {exc}")
        else:
            if spec is not None:
                specs.append(spec)
    if bad:
        raise JobListError(_bad_lines_message(bad))
    return specs


def _bad_lines_message(bad: list[str]) -> str:
    shown = bad[:MAX_BAD_LINES_SHOWN]
    if len(bad) > len(shown):
        shown.append(f"... and {len(bad) - len(shown)} more bad lines")
    return "\n".join(shown)


def read_job_file(path: str) -> list[JobSpec]:
    """Specs from the file at ``path`` (``-`` reads stdin); raises ``JobListError``."""
    # Bytes that are not UTF-8 stay (as surrogates) for the line parser to name their line.
    if path == "-":
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        return parse_job_lines(stdin, "stdin")
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise JobListError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_job_lines(text.splitlines(), path)


def collect_jobs(urls: Iterable[str], input_file: str | None) -> list[JobSpec]:
    """URLs from the arguments followed by the jobs of ``input_file``, in order, each once.

    Every bad argument and every bad line is named in one ``JobListError``.
    """
    specs: list[JobSpec] = []
    bad: list[str] = []
    for url in urls:
        try:
            specs.append(JobSpec(url=intake.validate_url(url)))
        except ValueError as exc:
            bad.append(f"{printable(redact_url(url.strip()))[:100]}: {exc}")
    if input_file is not None:
        try:
            specs.extend(read_job_file(input_file))
        except JobListError as exc:
            bad.append(str(exc))
    if bad:
        raise JobListError("\n".join(bad))
    return unique_jobs(specs)


def unique_jobs(specs: Iterable[JobSpec]) -> list[JobSpec]:
    """``specs`` without repeats of the same URL to the same output (the first one wins):
    two downloads of one file at once would only fight over its partial file.
    """
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for spec in specs:
        key = (spec.dedupe_key, spec.output)
        if key not in seen:
            seen.add(key)
            unique.append(spec)
    return unique
