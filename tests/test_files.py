"""recbole_umi.files: atomic writes of files and folders, damaged files named, and one process per run."""

import json
import logging
import math
import multiprocessing
import os
from pathlib import Path

import pytest

from recbole_umi.files import (
    DamagedFileError,
    folder_whole,
    read_json,
    recover_interrupted,
    run_lock,
    set_aside,
    write_atomic,
    write_csv_atomic,
)


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "runs" / "UMI__seed1.json"
    write_atomic(path, json.dumps({"a": 1}))
    write_atomic(path, b'{"a": 2}')
    assert read_json(path) == {"a": 2}
    assert os.listdir(path.parent) == ["UMI__seed1.json"]
    write_csv_atomic(tmp_path / "t.csv", [["model", "x"], ["UMI", "1,5"]])
    assert (tmp_path / "t.csv").read_bytes() == b'model,x\r\nUMI,"1,5"\r\n'


def test_write_atomic_gives_a_new_file_the_umasks_mode_and_keeps_an_old_files(tmp_path):
    old_umask = os.umask(0o022)
    try:
        new = write_atomic(tmp_path / "table.md", "x\n")
        assert new.stat().st_mode & 0o777 == 0o644  # as open() would make it, not mkstemp's 0600
        new.chmod(0o640)
        write_atomic(new, "y\n")
        assert new.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old_umask)


def test_a_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "table.md"
    write_atomic(path, "old\n")

    def no_room(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_room)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["table.md"]


def contents(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    final = tmp_path / "export"
    final.mkdir()
    (final / "a").write_text("old a")
    (final / "b").write_text("old b")
    with folder_whole(final) as folder:
        assert folder.parent == tmp_path and not folder.name.startswith("export")
        (folder / "c").write_text("new c")
        assert contents(final) == {"a": b"old a", "b": b"old b"}  # untouched while it is written
    assert contents(final) == {"c": b"new c"}  # the old files gone with the old folder
    with pytest.raises(RuntimeError, match="midway"):
        with folder_whole(final) as folder:
            (folder / "d").write_text("half")
            raise RuntimeError("failed midway")
    assert contents(final) == {"c": b"new c"}
    assert os.listdir(tmp_path) == ["export"]  # nothing left beside it
    with folder_whole(tmp_path / "new" / "data") as folder:  # no folder before, parents made
        (folder / "x").write_text("x")
    assert contents(tmp_path / "new" / "data") == {"x": b"x"}


def test_a_swap_that_fails_keeps_the_old_folder_and_a_file_or_link_is_refused(tmp_path, monkeypatch):
    final = tmp_path / "export"
    final.mkdir()
    (final / "a").write_text("old a")
    real_rename = Path.rename

    def no_room(self, target):  # the new folder cannot move in, after the old one moved aside
        if self.name.startswith(".export.partial-"):
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", no_room)
    with pytest.raises(OSError, match="No space"):
        with folder_whole(final) as folder:
            (folder / "b").write_text("new b")
    monkeypatch.undo()
    assert contents(final) == {"a": b"old a"} and os.listdir(tmp_path) == ["export"]
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(final)
    for name, kind in (("file", "a file"), ("link", "a symbolic link")):
        with pytest.raises(NotADirectoryError, match=f"{name} is {kind}, not a folder"):
            with folder_whole(tmp_path / name):
                pass
    assert sorted(os.listdir(tmp_path)) == ["export", "file", "link"] and contents(final) == {"a": b"old a"}


def test_a_killed_writers_leftovers_are_recovered_and_a_live_ones_left_alone(tmp_path, caplog):
    """A kill leaves ``.NAME.partial-PID`` (mid-write) or ``.NAME.old-PID`` with no folder at
    the name (between the two renames): the old folder is put back and the partial one
    removed, unless the process that made them still runs."""
    caplog.set_level(logging.WARNING)  # runs in the same process may have set the root logger's level higher
    dead, live = 2**22 + 12345, os.getppid()  # above Linux's default pid_max: no such process
    final = tmp_path / "data"
    old = tmp_path / f".data.old-{dead}"
    old.mkdir()
    (old / "a").write_text("old a")
    (tmp_path / f".data.partial-{dead}").mkdir()
    (tmp_path / f".data.partial-{dead}" / "a").write_text("cut sh")
    (tmp_path / f".data.partial-{live}").mkdir()
    (tmp_path / f".data.v2.old-{dead}").mkdir()  # the folder data.v2's, not data's
    recover_interrupted(final, "a test's write")
    assert contents(final) == {"a": b"old a"}
    assert "a test's write was killed while replacing it" in caplog.text
    assert sorted(os.listdir(tmp_path)) == [f".data.partial-{live}", f".data.v2.old-{dead}", "data"]


def test_a_damaged_file_is_named_and_set_aside(tmp_path):
    path = tmp_path / "UMI__seed1.json"
    path.write_text('{"variant": "UMI", "test_res')  # cut short
    with pytest.raises(DamagedFileError, match=r"UMI__seed1.json is damaged \(not JSON"):
        read_json(path)
    assert set_aside(path).name == "UMI__seed1.json.damaged" and not path.exists()
    path.write_text("[")
    assert set_aside(path).name == "UMI__seed1.json.damaged2"


def _try_lock(path, queue):
    with run_lock(path) as mine:
        queue.put(mine)


def test_run_lock_is_held_by_one_process_and_dies_with_it(tmp_path):
    path = tmp_path / "UMI__seed1.json"
    queue = multiprocessing.get_context("spawn").Queue()
    with run_lock(path) as mine:
        assert mine
        other = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(path, queue))
        other.start()
        other.join(60)
        assert queue.get(timeout=5) is False  # another process: taken
    other = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(path, queue))
    other.start()
    other.join(60)
    assert queue.get(timeout=5) is True  # released when the block ended


def test_record_json_keeps_plain_lists_on_one_line_and_reads_back_equal():
    from recbole_umi.files import record_json

    record = {"seed": 2021, "settings": {}, "curve": [], "per_user": {"user": ["9", "32"], "recall@50": [0.5, 0.25]},
              "nested": [[1, 2], {"k": None}], "nan": float("nan")}
    text = record_json(record)
    assert text == (
        '{\n  "seed": 2021,\n  "settings": {},\n  "curve": [],\n  "per_user": {\n    "user": ["9", "32"],\n'
        '    "recall@50": [0.5, 0.25]\n  },\n  "nested": [\n    [1, 2],\n    {\n      "k": null\n    }\n  ],\n'
        '  "nan": NaN\n}\n'
    )
    back = json.loads(text)
    assert math.isnan(back.pop("nan")) and back == {k: v for k, v in record.items() if k != "nan"}
