"""A symbolic link planted under a name hauler writes is never followed (issue 8, defect 1).

Under ``NAME.part`` (and ``NAME.part.json`` when a partial exists) the download is refused by
name; under a control file's temporary names the link is removed, never written through. In
every case the file the link points to keeps its bytes and nothing is created outside.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hauler.errors import BadRequest, ConnectionFailed, LocalError
from hauler.models import JobState, OnExisting
from hauler.store import Store
from hauler.transfer.engine import Engine
from tests.transfer.conftest import KIB, MIB, fast_settings, fetch, sha256_file
from tests.transfer.origin import Fault, Origin
from tests.worker.fleet import add_urls, drain

NAME = "f.bin"
PRECIOUS = b"the user's own bytes, outside the output directory\n"
CUT = 600 * KIB


class Scene:
    """An output directory, a directory outside it with a victim file, and planted links."""

    def __init__(self, tmp_path: Path) -> None:
        self.out = tmp_path / "out"
        self.outside = tmp_path / "outside"
        self.out.mkdir()
        self.outside.mkdir()
        self.victim = self.outside / "victim"
        self.victim.write_bytes(PRECIOUS)

    def plant(self, suffix: str, is_dangling: bool) -> Path:
        target = self.outside / "created" if is_dangling else self.victim
        link = self.out / (NAME + suffix)
        os.symlink(target, link)
        return link

    def assert_outside_untouched(self) -> None:
        assert self.victim.read_bytes() == PRECIOUS
        assert sorted(p.name for p in self.outside.iterdir()) == ["victim"]


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


async def _interrupted(origin: Origin, out: Path) -> None:
    """A first run that stops after ``CUT`` bytes: it writes the control file (``.tmp``)."""
    async with Engine(fast_settings(segment_retries=0, connections=1)) as engine:
        with pytest.raises(ConnectionFailed):
            await fetch(engine, origin.url(NAME), out, filename=NAME)


@pytest.mark.parametrize("is_dangling", [False, True], ids=["to-a-file", "dangling"])
async def test_link_as_the_partial_is_refused(
    origin: Origin, engine: Engine, scene: Scene, is_dangling: bool
) -> None:
    origin.add(NAME, 2 * MIB)
    link = scene.plant(".part", is_dangling)
    with pytest.raises(LocalError, match="refusing to write through the symbolic link"):
        await fetch(engine, origin.url(NAME), scene.out)  # named by the response
    with pytest.raises(LocalError, match=f"symbolic link {link}"):
        await fetch(engine, origin.url(NAME), scene.out, filename=NAME)
    scene.assert_outside_untouched()
    assert os.path.islink(link)
    assert sorted(p.name for p in scene.out.iterdir()) == [link.name]


@pytest.mark.parametrize("is_dangling", [False, True], ids=["to-a-file", "dangling"])
async def test_link_as_the_control_file_of_a_partial_is_refused(
    origin: Origin, engine: Engine, scene: Scene, is_dangling: bool
) -> None:
    origin.add(NAME, 2 * MIB, faults={1: Fault(close_after=CUT)})
    await _interrupted(origin, scene.out)
    control = scene.out / (NAME + ".part.json")
    control.unlink()
    scene.plant(".part.json", is_dangling)
    with pytest.raises(LocalError, match=f"symbolic link {control}"):
        await fetch(engine, origin.url(NAME), scene.out, filename=NAME)
    scene.assert_outside_untouched()


@pytest.mark.parametrize("is_dangling", [False, True], ids=["to-a-file", "dangling"])
@pytest.mark.parametrize("suffix", [".part.json", ".part.json.tmp", ".part.json.tmp-bg"])
async def test_link_under_a_control_name_is_replaced_not_followed(
    origin: Origin, engine: Engine, scene: Scene, suffix: str, is_dangling: bool
) -> None:
    # A new partial: the control file and its temps are (re)written, the link only replaced.
    origin.add(NAME, 2 * MIB, faults={1: Fault(close_after=CUT)})
    link = scene.plant(suffix, is_dangling)
    await _interrupted(origin, scene.out)
    scene.assert_outside_untouched()
    assert not os.path.islink(scene.out / (NAME + ".part.json"))
    if suffix != ".part.json":  # a temp name: written (the link removed) at the interruption
        assert not os.path.lexists(link) or not os.path.islink(link)
    result = await fetch(engine, origin.url(NAME), scene.out, filename=NAME)
    assert result.resumed_bytes == CUT
    assert sha256_file(result.path) == origin.sha256(NAME)
    scene.assert_outside_untouched()
    assert sorted(p.name for p in scene.out.iterdir()) == [NAME]


async def test_link_in_a_subdirectory_leading_outside_is_refused(
    origin: Origin, engine: Engine, scene: Scene
) -> None:
    origin.add(NAME, 100 * KIB)
    os.symlink(scene.outside, scene.out / "sub")
    with pytest.raises(Exception, match=r"outside the output directory|symbolic link"):
        await fetch(engine, origin.url(NAME), scene.out, filename=f"sub/{NAME}")
    scene.assert_outside_untouched()


async def test_worker_job_refuses_a_planted_partial(
    store: Store, origin: Origin, scene: Scene
) -> None:
    origin.add(NAME, 300 * KIB)
    scene.plant(".part", is_dangling=False)
    other = "g.bin"
    origin.add(other, 300 * KIB)
    os.symlink(scene.outside / "created", scene.out / f"{other}.part")  # dangling
    ids = await add_urls(store, [origin.url(NAME), origin.url(other)])
    summary = await drain(store, scene.out)
    assert summary.failed == 2
    for job_id in ids:
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.FAILED and job.error is not None
        assert job.error.error_class == "local"
        assert "refusing to write through the symbolic link" in job.error.message
    scene.assert_outside_untouched()


def test_a_directory_swapped_for_a_link_after_resolving_is_refused(scene: Scene) -> None:
    # safe_path resolved out/sub while it was a directory; a link is there when the file opens.
    from hauler.transfer.partfile import PartFile

    part = PartFile((scene.out / "sub" / NAME).resolve())
    os.symlink(scene.outside, scene.out / "sub")
    with pytest.raises(LocalError, match=f"symbolic link {scene.out / 'sub'}"):
        part.open()
    scene.assert_outside_untouched()


@pytest.mark.parametrize("is_dangling", [False, True], ids=["to-a-file", "dangling"])
@pytest.mark.parametrize("policy", list(OnExisting))
async def test_link_under_the_final_name_is_never_written_through(
    origin: Origin, engine: Engine, scene: Scene, is_dangling: bool, policy: OnExisting
) -> None:
    # naming.safe_path resolves the final name: a link leading outside is refused by name.
    origin.add(NAME, 300 * KIB)
    link = scene.plant("", is_dangling)
    for filename in (None, NAME):
        with pytest.raises(BadRequest, match="leads outside the output directory"):
            await fetch(engine, origin.url(NAME), scene.out, filename=filename, on_existing=policy)
    assert os.path.islink(link)
    assert sorted(p.name for p in scene.out.iterdir()) == [NAME]
    scene.assert_outside_untouched()
