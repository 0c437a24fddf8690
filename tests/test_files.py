"""recbole_umi.files: atomic writes, damaged files named, and one process per run."""

import json
import math
import multiprocessing
import os

import pytest

from recbole_umi.files import DamagedFileError, read_json, run_lock, set_aside, write_atomic, write_csv_atomic


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
