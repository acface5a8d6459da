"""Safe output names: whatever a URL, a Content-Disposition header or a user option says, the file
lands inside the output directory under a name every common file system accepts.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hauler.errors import BadRequest

FALLBACK_NAME = "download"
INDEX_NAME = "index.html"
MAX_COMPONENT_BYTES = 255
# Names hauler derives from a file's name: the longest temp file of its control file
# (``NAME.part.json.tmp-bg``) and a collision counter (``NAME.9999.ext``) must still fit.
LONGEST_DERIVED_SUFFIX = ".part.json.tmp-bg"
MAX_COUNTER = 9999
MAX_FILE_NAME_BYTES = MAX_COMPONENT_BYTES - len(LONGEST_DERIVED_SUFFIX) - len(f".{MAX_COUNTER}")
# An extension longer than this is more likely part of the name than a real suffix.
_MAX_EXT_BYTES = 32

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INVALID = re.compile(r'[<>:"|?*]')
# Windows device names, also with an extension ("con.txt"); superscript digits count too.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{i}" for dev in ("COM", "LPT") for i in [*"123456789", "¹", "²", "³"]}
)
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf';\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_EXT_VALUE = re.compile(r"^([!#$%&+^_`{}~0-9A-Za-z-]*)'[^']*'(.*)$")


def safe_name(name: str) -> str:
    """Sanitise a relative name or path so that it is portable and cannot climb out of a directory.

    Control characters are removed, backslashes become separators, empty/``.``/``..`` components
    are dropped, characters Windows forbids become ``_``, reserved device names are prefixed
    with ``_`` and each component is capped at 255 UTF-8 bytes, the last (the file's name) at
    ``MAX_FILE_NAME_BYTES`` so that its ``.part``, control and numbered names fit too, keeping
    its extension.
    Never returns an empty string.
    """
    # Lone surrogates (undecodable header bytes) cannot be encoded; "?" then becomes "_".
    text = name.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub("", text).replace("\\", "/")
    parts = [_safe_component(part) for part in text.split("/")]
    kept = [part for part in parts if part]
    if not kept:
        return FALLBACK_NAME
    # The file's own name gets the partial's and the counter's suffixes: it is capped tighter.
    kept[-1] = _cap_bytes(kept[-1], MAX_FILE_NAME_BYTES).rstrip(". ") or FALLBACK_NAME
    return "/".join(kept)


def _safe_component(part: str) -> str:
    """One path component made safe; "" when nothing usable is left."""
    part = _INVALID.sub("_", part).rstrip(". ")
    if not part.strip():
        return ""
    if part.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        part = "_" + part
    return _cap_bytes(part, MAX_COMPONENT_BYTES).rstrip(". ")


def _cap_bytes(part: str, limit: int) -> str:
    """Truncate ``part`` to ``limit`` UTF-8 bytes on a character boundary, keeping a short
    extension."""
    if len(part.encode("utf-8")) <= limit:
        return part
    stem, dot, ext = part.rpartition(".")
    suffix = dot + ext
    if not stem or len(suffix.encode("utf-8")) > _MAX_EXT_BYTES:
        stem, suffix = part, ""
    budget = limit - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", "ignore") + suffix


def numbered(name: str, counter: int) -> str:
    """``name`` with ``counter`` before its extension: ``x.bin`` → ``x.1.bin`` (aria2c's
    auto-file-renaming); a name without an extension gets it at the end (``x`` → ``x.1``).

    Only the last component of a path is numbered; it fits in 255 bytes for counters up to
    ``MAX_COUNTER`` because ``safe_name`` capped it to ``MAX_FILE_NAME_BYTES``.
    """
    head, slash, base = name.rpartition("/")
    stem, _, ext = base.rpartition(".")
    if not stem or len(ext.encode("utf-8")) > _MAX_EXT_BYTES:
        return f"{head}{slash}{base}.{counter}"
    return f"{head}{slash}{stem}.{counter}.{ext}"


def safe_path(output_dir: Path, name: str) -> Path:
    """``output_dir / safe_name(name)``, resolved, and guaranteed strictly inside ``output_dir``.

    Raises ``BadRequest`` when a symlink already in ``output_dir`` would lead the path outside.
    """
    base = output_dir.resolve()
    path = (base / safe_name(name)).resolve()
    if path == base or not path.is_relative_to(base):
        raise BadRequest(f"output name {name!r} leads outside the output directory {base}")
    return path


# Cached: a get run asks for each URL's name twice (before the request, to skip files already
# there, and after the response), and the answer is a pure function of the two strings.
@functools.lru_cache(maxsize=1024)
def name_from_response(url: str, content_disposition: str | None) -> str:
    """The file name an origin suggests: Content-Disposition (``filename*`` first), else the
    last non-empty URL path segment, else ``index.html``; always sanitised and never a path.
    """
    for candidate in (_disposition_name(content_disposition), _url_name(url)):
        base = _basename(candidate) if candidate else None
        if base:
            return safe_name(base)
    return INDEX_NAME


def _basename(text: str) -> str | None:
    """The last component of ``text`` that names something (not empty, ``.`` or ``..``)."""
    parts = [p for p in text.replace("\\", "/").split("/") if p.strip(" .")]
    return parts[-1] if parts else None


def _url_name(url: str) -> str | None:
    """The last non-empty path segment of ``url``, percent-decoded."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return unquote(segments[-1], errors="replace") if segments else None


def _disposition_name(header: str | None) -> str | None:
    """The file name of an RFC 6266 Content-Disposition header; ``filename*`` wins."""
    if not header:
        return None
    params: dict[str, str] = {}
    _, _, rest = header.partition(";")
    for key, raw in _PARAM.findall(";" + rest):
        params.setdefault(key.lower(), raw.strip())
    extended = params.get("filename*")
    if extended is not None:
        decoded = _decode_ext_value(_unquote_string(extended))
        if decoded:
            return decoded
    plain = params.get("filename")
    return _unquote_string(plain) if plain else None


def _unquote_string(raw: str) -> str:
    """The content of an RFC 7230 quoted-string (or a bare token as is)."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def _decode_ext_value(value: str) -> str | None:
    """Decode an RFC 8187 ext-value ``charset'lang'pct-encoded``; None if malformed."""
    match = _EXT_VALUE.match(value)
    if not match:
        return None
    charset = match.group(1).lower() or "utf-8"
    if charset not in ("utf-8", "iso-8859-1"):
        return None
    return unquote(match.group(2), encoding=charset, errors="replace")
