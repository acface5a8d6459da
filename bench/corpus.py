"""The files the origin serves: generated once, deterministically, and cached with their sha256.

Content is pseudo-random from a seed derived from the file's name, so any misplaced byte in a
download changes its hash, and two machines generate the same corpus.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1
CHUNK_BYTES = 8 << 20
MIB = 1 << 20


class CorpusError(RuntimeError):
    """The corpus cannot be generated (disk too small, unwritable cache)."""


@dataclass(frozen=True, slots=True)
class CorpusFile:
    """One file of the corpus: its path relative to the corpus root, size and sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class FileWant:
    """A file the benchmark needs: its name (relative path) and size."""

    name: str
    size: int


def big_file(size: int) -> FileWant:
    """The single large file of ``size`` bytes, named for its size."""
    return FileWant(f"big-{size // MIB}M.bin", size)


def small_files(count: int, size: int) -> list[FileWant]:
    """``count`` small files of ``size`` bytes in a subfolder named for the size."""
    folder = f"small-{size // 1024}K"
    return [FileWant(f"{folder}/f{i:05d}.bin", size) for i in range(count)]


def ensure(root: Path, wants: list[FileWant], reserve_bytes: int) -> dict[str, CorpusFile]:
    """Generate the missing files of ``wants`` under ``root``; return all of them by name.

    ``reserve_bytes`` is what the downloads will need on the same disk besides the corpus; the
    call stops with ``CorpusError`` before writing anything when the disk is short.
    """
    root.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(root)
    missing = [w for w in wants if not _is_cached(root, manifest.get(w.name), w)]
    check_disk(root, sum(w.size for w in missing) + reserve_bytes)
    if missing:
        print(f"generating {len(missing)} corpus file(s) in {root} ...", flush=True)
    for want in missing:
        manifest[want.name] = _generate(root, want)
        if want.size >= CHUNK_BYTES:  # a big file is worth remembering at once
            _save_manifest(root, manifest)
    _save_manifest(root, manifest)
    return {w.name: manifest[w.name] for w in wants}


def check_disk(root: Path, needed_bytes: int) -> None:
    """Raise ``CorpusError`` when the disk holding ``root`` has less than ``needed_bytes`` free."""
    free = shutil.disk_usage(root).free
    if free < needed_bytes:
        raise CorpusError(
            f"not enough disk space under {root}: {free / 2**30:.1f} GiB free, "
            f"{needed_bytes / 2**30:.1f} GiB needed (corpus and/or downloads). Free some space "
            "or pass --quick for smaller files."
        )


def _is_cached(root: Path, entry: CorpusFile | None, want: FileWant) -> bool:
    path = root / want.name
    return (
        entry is not None
        and entry.size == want.size
        and path.is_file()
        and (path.stat().st_size == want.size)
    )


def _generate(root: Path, want: FileWant) -> CorpusFile:
    path = root / want.name
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"hauler-bench-v{GENERATOR_VERSION}:{want.name}")
    digest = hashlib.sha256()
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        left = want.size
        while left > 0:
            block = rng.randbytes(min(CHUNK_BYTES, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    tmp.replace(path)
    return CorpusFile(want.name, want.size, digest.hexdigest())


def _manifest_path(root: Path) -> Path:
    return root / "manifest.json"


def _load_manifest(root: Path) -> dict[str, CorpusFile]:
    path = _manifest_path(root)
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    if raw.get("version") != GENERATOR_VERSION:
        return {}
    return {name: CorpusFile(name, e["size"], e["sha256"]) for name, e in raw["files"].items()}


def _save_manifest(root: Path, manifest: dict[str, CorpusFile]) -> None:
    files = {f.name: {"size": f.size, "sha256": f.sha256} for f in manifest.values()}
    tmp = _manifest_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": GENERATOR_VERSION, "files": files}))
    tmp.replace(_manifest_path(root))
