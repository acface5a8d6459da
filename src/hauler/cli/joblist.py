"""The job list of ``hauler get``: URLs from the arguments plus an input file or stdin.

Lines are parsed by ``hauler.intake`` (the same rules as ``hauler add``); ``get`` refuses the
whole run at the first bad line, since it downloads in the foreground and the user is there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from hauler.intake import check_url, parse_line
from hauler.models import JobSpec


class JobListError(ValueError):
    """An input line or file the user must fix; the message names the file and line."""


def parse_job_lines(lines: Iterable[str], source: str) -> list[JobSpec]:
    """Specs from input lines: blank lines and ``#`` comments are skipped, a line starting
    with ``{`` is a JSON object of ``JobSpec`` fields, any other line is one URL.
    """
    specs: list[JobSpec] = []
    for number, line in enumerate(lines, start=1):
        try:
            spec = parse_line(line, {})
        except ValueError as exc:
            raise JobListError(f"{source} line {number}: {exc}") from exc
        if spec is not None:
            specs.append(spec)
    return specs


def read_job_file(path: str) -> list[JobSpec]:
    """Specs from the file at ``path`` (``-`` reads stdin); raises ``JobListError``."""
    if path == "-":
        return parse_job_lines(sys.stdin, "stdin")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise JobListError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise JobListError(f"cannot read {path}: not UTF-8 text") from exc
    return parse_job_lines(text.splitlines(), path)


def collect_jobs(urls: Iterable[str], input_file: str | None) -> list[JobSpec]:
    """URLs from the arguments followed by the jobs of ``input_file``, in order, each once."""
    try:
        specs = [JobSpec(url=check_url(url)) for url in urls]
    except ValueError as exc:
        raise JobListError(str(exc)) from exc
    if input_file is not None:
        specs.extend(read_job_file(input_file))
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
