"""``hauler get``'s command-line flags, as the typer ``Annotated`` types its command takes:
the names, the help texts and the bounds of every option, apart from what they mean
(``getoptions``) and what the command does with them (``get``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Urls = Annotated[
    list[str] | None, typer.Argument(help="URLs to download.", metavar="URL...", show_default=False)
]
Directory = Annotated[
    Path | None,
    typer.Option(
        "-d",
        "--dir",
        "--output-dir",
        help="Directory for the files (default: here).",
        show_default=False,
    ),
]
Output = Annotated[
    str | None,
    typer.Option(
        "-o",
        "--output",
        help="Name of the single file, relative to -d; an existing directory or a NAME/ "
        "means that directory.",
        show_default=False,
    ),
]
Connections = Annotated[
    int | None,
    typer.Option("-x", "--connections", min=1, max=1024, help="Connections per file (default 8)."),
]
Parallel = Annotated[
    int, typer.Option("-j", "--parallel", min=1, max=100_000, help="Files at once.")
]
InputFile = Annotated[
    str | None, typer.Option("-i", "--input-file", help="File of URLs or JSON lines (- for stdin).")
]
ChecksumOpt = Annotated[
    str | None, typer.Option(help="ALGO=HEX expected for the single URL (sha256=..., md5=...).")
]
Proxy = Annotated[str | None, typer.Option(help="http://, https:// or socks5:// proxy URL.")]
LimitRate = Annotated[
    str | None, typer.Option(help="Overall speed limit, e.g. 4M or 500K (0: none).")
]
FileRate = Annotated[str | None, typer.Option(help="Speed limit per file, e.g. 1M.")]
Force = Annotated[bool, typer.Option("--force", help="Same as --allow-overwrite.")]
AllowOverwrite = Annotated[
    bool,
    typer.Option("--allow-overwrite", help="Replace a file already under the name."),
]
NoPools = Annotated[
    bool,
    typer.Option("--no-pools", help="Ignore the store's proxy and account pools (hauler proxy …)."),
]
NoClobber = Annotated[
    bool,
    typer.Option("-n", "--no-clobber", help="Leave a file already under the name, skip the URL."),
]
Continue = Annotated[
    bool,
    typer.Option(
        "-c", "--continue", help="Take a file already under the name as this download's start."
    ),
]
Header = Annotated[
    list[str] | None,
    typer.Option(
        "-H", "--header", help="Extra header 'Name: value' (repeatable).", show_default=False
    ),
]
UserAgent = Annotated[str | None, typer.Option("-U", "--user-agent", help="User-Agent header.")]
Referer = Annotated[str | None, typer.Option("--referer", help="Referer header.")]
Cookies = Annotated[
    Path | None,
    typer.Option("--load-cookies", help="Netscape cookies.txt to send cookies from."),
]
Timeout = Annotated[
    float | None,
    typer.Option("--timeout", min=0.001, help="Connect and read timeout, seconds."),
]
Retries = Annotated[
    int | None,
    typer.Option("--retries", min=0, max=1000, help="Retries of a failing connection (default 5)."),
]
Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="Only errors (and the exit status); no progress.")
]
Verbose = Annotated[
    int,
    typer.Option(
        "-v", "--verbose", count=True, help="Log more: -v INFO, -vv DEBUG.", show_default=False
    ),
]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bars.")]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Print each URL and where it would go; download nothing."),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")]
Processes = Annotated[
    int | None,
    typer.Option(
        "-P",
        "--processes",
        min=1,
        max=1024,
        help="Processes to spread the files over (default: one per CPU core when there are "
        "enough files; 1 with --limit-rate).",
        show_default=False,
    ),
]
