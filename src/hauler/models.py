"""The nouns every layer shares: job specs, jobs and their states, leases, workers.

Pure data: no I/O library is imported here (an import-linter contract checks it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")

# Most URLs of a big input: printable ASCII, a plain host, a port of at most 4 digits (always in
# range). They pass without urlsplit, which costs ~10 times the match: `add` reads 10 M lines.
_SIMPLE_URL = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~-]+(?::[0-9]{1,4})?(?:[/?#][!-~]*)?\Z"
)
_URL_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]+")
# Whitespace, C0 and C1 controls, DEL; lone surrogates are bytes that were not UTF-8.
_BAD_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def validate_url(text: str) -> str:
    """``text`` stripped, when it is a usable ``scheme://host[:port]/...`` URL.

    The one URL check of every intake (``add``, ``get``, JSON lines, ``JobSpec``): a scheme and
    a host, a port from 0 to 65535, balanced IPv6 brackets, no whitespace or control character,
    valid UTF-8 (text read with ``errors="surrogateescape"``). Raises ``ValueError`` with a
    one-line reason that does not repeat the URL (it may hold a password).
    """
    url = text.strip()
    if _SIMPLE_URL.match(url) is not None:
        return url
    if _SURROGATE.search(url) is not None:
        raise ValueError("not valid UTF-8")
    if _URL_SHAPE.match(url) is None:
        raise ValueError("not a URL (expected scheme://host/path)")
    if (bad := _BAD_CHAR.search(url)) is not None:
        raise ValueError(f"whitespace or a control character at column {bad.start() + 1}")
    try:
        parts = urlsplit(url)
        _ = parts.port  # parsed lazily: the range check happens here
    except ValueError as exc:
        raise ValueError(_split_reason(str(exc))) from None
    if not parts.hostname:
        raise ValueError("no host name in the URL")
    return url


def _split_reason(reason: str) -> str:
    """urlsplit's complaint in a user's words."""
    if "IPv6" in reason:
        return "unbalanced [ ] around the host (an IPv6 address is written [::1])"
    if "Port" in reason or "port" in reason:
        return "the port is not a number from 0 to 65535"
    return f"not a URL ({reason})"


class JobKind(StrEnum):
    """What a job downloads; ``auto`` lets the pipeline decide from the URL.

    ``media``: a page or manifest yt-dlp extracts (a video, its formats, merged). ``live``: a
    live HLS playlist recorded into parts until the stream ends.
    """

    AUTO = "auto"
    FILE = "file"
    MEDIA = "media"
    LIVE = "live"


class OnExisting(StrEnum):
    """What to do when the final name is already taken by a file hauler did not write for this
    download (a file it wrote for this download is always recognised and skipped).

    ``rename``: save under ``name.1.ext`` (aria2c's auto-file-renaming, the default);
    ``skip``: leave it and report it skipped (wget ``-n/--no-clobber``);
    ``overwrite``: download again and replace it (``--allow-overwrite``, ``--force``);
    ``continue``: treat it as a partial of this download and fetch the rest (wget ``-c``).
    """

    RENAME = "rename"
    SKIP = "skip"
    OVERWRITE = "overwrite"
    CONTINUE = "continue"


class JobState(StrEnum):
    """Where a job is in its life. See ``TRANSITIONS`` for the legal moves."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # queued → running: claim.
    JobState.QUEUED: frozenset({JobState.RUNNING}),
    # running → queued: released, or the lease expired and was reclaimed.
    JobState.RUNNING: frozenset(
        {JobState.DONE, JobState.FAILED, JobState.RETRYING, JobState.QUEUED}
    ),
    # retrying → queued: due; → running: claimed directly once due.
    JobState.RETRYING: frozenset({JobState.QUEUED, JobState.RUNNING}),
    # done/failed → queued: requeue.
    JobState.DONE: frozenset({JobState.QUEUED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
}


def is_legal_transition(old: JobState, new: JobState) -> bool:
    """True when a job may move from ``old`` to ``new``."""
    return new in TRANSITIONS[old]


class Checksum(BaseModel):
    """An expected digest, written ``ALGO=HEX`` on the command line."""

    model_config = ConfigDict(frozen=True)

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """Parse ``sha256=ab12...``; raises ``ValueError`` with the accepted forms."""
        algo, sep, digest = text.partition("=")
        algo = algo.strip().lower().replace("-", "")
        digest = digest.strip().lower()
        if not sep or algo not in CHECKSUM_ALGORITHMS:
            raise ValueError(
                f"bad checksum {text!r}: write ALGO=HEX with ALGO one of "
                + ", ".join(CHECKSUM_ALGORITHMS)
            )
        expected_len = hashlib.new(algo).digest_size * 2
        if len(digest) != expected_len or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"bad checksum {text!r}: {algo} needs {expected_len} hex digits")
        return cls(algorithm=algo, hexdigest=digest)

    def __str__(self) -> str:
        return f"{self.algorithm}={self.hexdigest}"


def normalise_url(url: str) -> str:
    """The dedupe form of a URL: scheme and host lower-cased, default port and fragment dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"{parts.username or ''}:{parts.password or ''}@{host}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


class MediaOptions(BaseModel):
    """How a ``media`` job picks, names and completes its video (yt-dlp's options, by name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str | None = Field(default=None, description="yt-dlp format or best/worst/audio/720")
    template: str | None = Field(default=None, description="yt-dlp output template")
    merge_output_format: str | None = None
    info_json: bool = False
    write_subs: bool = False
    sub_langs: tuple[str, ...] = ("en.*",)
    write_thumbnail: bool = False
    cookies: str | None = Field(default=None, description="a Netscape cookie file for yt-dlp")
    playlist_items: str | None = Field(default=None, description="yt-dlp's 1,3-5 syntax")
    max_downloads: int | None = Field(default=None, ge=1, description="entries of a playlist")


class LiveOptions(BaseModel):
    """How a ``live`` job records: parts of ``split_s`` of media, for at most
    ``max_duration_s``, ending ``offline_grace_s`` after the stream went silent.

    A room page (not a playlist or FLV URL) is polled every ``poll_s`` (with jitter) until it is
    live; ``watch`` makes the job a monitor that goes back to polling after each session and
    never completes by itself. ``remux`` rewrites each closed part into that container;
    ``notify_url`` hears a JSON event when the room goes live and when a session ends.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    split_s: float = Field(default=1800.0, gt=0)
    max_duration_s: float | None = Field(default=None, gt=0)
    offline_grace_s: float = Field(default=60.0, ge=0)
    poll_s: float = Field(default=30.0, gt=0)
    watch: bool = False
    format: str | None = Field(default=None, description="yt-dlp format or best/worst/720")
    remux: Literal["mp4", "mkv"] | None = None
    notify_url: str | None = None


class PoolPins(BaseModel):
    """What a job asks of the pools: proxies of one ``region`` only, and one ``account`` (its
    name or id) instead of any. A pinned resource that is not usable now makes the job wait
    for it, never take another."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str | None = Field(default=None, min_length=1)
    account: str | None = Field(default=None, min_length=1)


class JobSpec(BaseModel):
    """What the user asked for: one URL and how to fetch it. Stored as JSON with the job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    kind: JobKind = JobKind.AUTO
    output: str | None = Field(
        default=None, description="file name or path template, relative to the output directory"
    )
    checksum: Checksum | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    priority: int = Field(default=0, description="higher runs first")
    collection: str = "default"
    tags: tuple[str, ...] = ()
    max_attempts: int = Field(default=5, ge=1, le=1000)
    key: str | None = Field(default=None, description="dedupe key; the normalised URL if unset")
    media: MediaOptions | None = None
    live: LiveOptions | None = None
    pools: PoolPins | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return validate_url(value)

    @field_validator("checksum", mode="before")
    @classmethod
    def _parse_checksum(cls, value: Any) -> Any:
        return Checksum.parse(value) if isinstance(value, str) else value

    @property
    def dedupe_key(self) -> str:
        """The key under which this job is recognised as a duplicate: ``key`` if given, else the
        normalised URL, followed by the output name when one is given (the same URL saved under
        two names is two jobs). A space cannot occur in a URL, so the forms never collide; the
        keys of specs without an output are those of earlier versions (archives still dedupe).
        """
        if self.key:
            return self.key
        normalised = normalise_url(self.url)
        return normalised if self.output is None else f"{normalised} {self.output}"

    @property
    def host(self) -> str:
        """The URL's host name, lower-cased (used by ``requeue --host``)."""
        return (urlsplit(self.url).hostname or "").lower()


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job's last attempt failed."""

    error_class: str
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the store holds it."""

    id: str
    key: str
    spec: JobSpec
    state: JobState
    priority: int
    attempts: int
    max_attempts: int
    ready_at: float
    created_at: float
    updated_at: float
    token: int = 0
    lease_until: float | None = None
    worker: str | None = None
    node: str | None = None
    error: JobError | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on a job: valid while ``token`` is the job's current token and not expired."""

    job_id: str
    token: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker's heartbeat record, as ``hauler status`` shows it."""

    name: str
    node: str
    pid: int
    started_at: float
    seen_at: float
    concurrency: int
    is_paused: bool = False
    bytes_per_s: float = 0.0
    bytes_total: int = 0
    current_jobs: tuple[str, ...] = field(default_factory=tuple)
    # Live jobs among them: recording a stream now, or watching a room until it goes live.
    recording: int = 0
    watching: int = 0
