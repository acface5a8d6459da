"""The control file index: never says "absent" about a control file that was there."""

from __future__ import annotations

from pathlib import Path

from hauler.transfer.controlfiles import ControlFiles


def test_listing_then_what_this_process_writes(tmp_path: Path) -> None:
    (tmp_path / "a.bin.part.json").write_text("{}")
    (tmp_path / "b.bin").write_text("done")
    index = ControlFiles()
    assert index.may_exist(tmp_path, "a.bin.part.json")
    assert not index.may_exist(tmp_path, "b.bin.part.json")
    index.note_written(tmp_path / "b.bin.part.json")
    assert index.may_exist(tmp_path, "b.bin.part.json")


def test_a_missing_directory_has_none_until_one_is_written(tmp_path: Path) -> None:
    index = ControlFiles()
    directory = tmp_path / "later"
    assert not index.may_exist(directory, "x.part.json")
    index.note_written(directory / "x.part.json")
    assert index.may_exist(directory, "x.part.json")


def test_an_unreadable_directory_may_hold_anything(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    index = ControlFiles()
    assert index.may_exist(not_a_dir, "x.part.json")
