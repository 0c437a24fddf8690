"""recbole_umi.experiments.run_files: where run files live, reading them back, and the check
that two sets of runs were tested on the same users in the same order (also in the scripts
that test models against each other on the run files)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from recbole_umi.experiments import runs
from recbole_umi.experiments.run_files import read_runs, run_file, same_users
from recbole_umi.files import DamagedFileError

USERS = ["3", "1", "2"]


def record(variant: str, seed: int, users=USERS) -> dict:
    return {"variant": variant, "seed": seed,
            "test_per_user": {"user": list(users), "recall@50": [0.0, 1.0, 0.5][:len(users)]}}


def write_run(folder: Path, variant: str, seed: int, users=USERS) -> Path:
    path = run_file(folder, variant, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record(variant, seed, users)))
    return path


def test_run_file_cleans_the_variant_name_as_runs_did(tmp_path):
    assert runs.run_file is run_file  # the old import keeps working
    assert run_file(tmp_path, "MIND+HN", 2020) == tmp_path / "runs" / "MIND+HN__seed2020.json"
    assert run_file(tmp_path, "UMI dropout 0.5", 1) == tmp_path / "runs" / "UMI_dropout_0.5__seed1.json"
    assert run_file(str(tmp_path), "a/b:c=d é", 3) == tmp_path / "runs" / "a_b_c_d____seed3.json"
    assert run_file(tmp_path, "UMI-DAR_x.y", 4).name == "UMI-DAR_x.y__seed4.json"


def test_read_runs_reads_each_seed_in_order(tmp_path):
    for seed in (2, 1, 3):
        write_run(tmp_path, "UMI dropout 0.5", seed)
    found = read_runs(tmp_path, "UMI dropout 0.5", [3, 1])
    assert [r["seed"] for r in found] == [3, 1]
    assert found[0] == record("UMI dropout 0.5", 3)


def test_read_runs_names_every_missing_file(tmp_path):
    write_run(tmp_path, "UMI", 1)
    with pytest.raises(FileNotFoundError) as error:
        read_runs(tmp_path, "UMI", [1, 2, 3])
    assert str(run_file(tmp_path, "UMI", 2)) in str(error.value)
    assert str(run_file(tmp_path, "UMI", 3)) in str(error.value)
    assert str(run_file(tmp_path, "UMI", 1)) not in str(error.value)
    # existing=True: the runs found, in seed order, and none is no error
    assert [r["seed"] for r in read_runs(tmp_path, "UMI", [3, 1, 2], existing=True)] == [1]
    assert read_runs(tmp_path, "MIND", [1], existing=True) == []


def test_a_damaged_run_file_is_named(tmp_path):
    path = write_run(tmp_path, "UMI", 1)
    path.write_text(path.read_text()[:-10])  # cut short
    with pytest.raises(DamagedFileError, match="UMI__seed1.json is damaged"):
        read_runs(tmp_path, "UMI", [1])


def test_same_users_returns_the_shared_users():
    assert same_users([record("UMI", 1), record("UMI", 2)], [record("MIND", 1)]) == USERS
    assert same_users() == []


def test_same_users_refuses_other_users_or_another_order():
    with pytest.raises(ValueError, match="MIND seed 2 and UMI seed 1 were tested on other users"):
        same_users([record("UMI", 1)], [record("MIND", 1), record("MIND", 2, ["1", "3", "2"])])
    with pytest.raises(ValueError, match="UMI seed 2 and UMI seed 1"):  # across one variant's seeds too
        same_users([record("UMI", 1), record("UMI", 2, USERS[:2])])
    # the names given, and records without a seed (a run's unseen entry) by position
    unseen = [{"test_per_user": {"user": USERS}}, {"test_per_user": {"user": USERS[::-1]}}]
    with pytest.raises(ValueError, match="UMI, history left out run 2 and UMI seed 1"):
        same_users([record("UMI", 1), record("UMI", 2)], unseen, names=["UMI", "UMI, history left out"])
    with pytest.raises(ValueError, match="no per-user test results"):
        same_users([record("UMI", 1)], [{"variant": "MIND", "seed": 1, "test_result": {}}])


def test_the_module_is_light():
    code = ("import sys, recbole_umi.experiments.run_files; "
            "print('torch' in sys.modules, 'recbole' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.split() == ["False", "False"]


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script_main(name: str):
    return runpy.run_path(str(SCRIPTS / name))["main"]


def write_record(folder: Path, variant: str, seed: int, **entries) -> None:
    path = run_file(folder, variant, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record(variant, seed), "best_valid_result": {"recall@50": 0.5}, **entries}))


def test_the_scripts_refuse_two_models_tested_on_other_users(tmp_path):
    """Where a script puts two models' per-user results side by side, misaligned users stop it."""
    other_order = {"user": ["1", "3", "2"], "recall@50": [1.0, 0.0, 0.5]}
    for seed in (1, 2):
        curve = {"0": {"valid": {"recall@50": 0.1}, "test_per_user": record("A", seed)["test_per_user"]}}
        write_record(tmp_path, "A", seed, history_curve=curve)
        write_record(tmp_path / "other", "A", seed, history_curve=curve, test_per_user=other_order)
        write_record(tmp_path, "B", seed, test_per_user=other_order)
    curve_main = script_main("cold_start_curve.py")
    curve_main([str(tmp_path), "--models=A", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 'c'}"])
    with pytest.raises(ValueError, match="A other at k = all seed 1 and A at k = all seed 1"):  # --extra
        curve_main([str(tmp_path), "--models=A", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 'c'}",
                    f"--extra=A other={tmp_path / 'other'}:A"])
    with pytest.raises(ValueError, match="B seed 1 and A seed 1 were tested on other users"):
        script_main("results_figure.py")([str(tmp_path), "--models=A,B", "--seeds=1,2", f"--out={tmp_path / 'f.png'}"])
    for seed in (1, 2):
        write_record(tmp_path / "seen", "A", seed, unseen={"test_per_user": other_order if seed == 2 else
                                                           record("A", seed)["test_per_user"]})
    with pytest.raises(ValueError, match=r"A \(history left out\) seed 2 and A \(paper's protocol\) seed 1"):
        script_main("seen_items_table.py")([str(tmp_path / "seen"), "--models=A", "--seeds=1,2",
                                            "--metrics=recall@50", f"--out={tmp_path / 's'}"])


def test_the_run_clock_keeps_a_runs_time_over_its_parts(tmp_path):
    import time

    kept = tmp_path / "checkpoints" / "elapsed.json"
    clock = runs.RunClock(tmp_path / "checkpoints", resumed=False, every=0.02)
    assert json.loads(kept.read_text())["elapsed_s"] == 0.0  # kept from the start
    deadline = time.monotonic() + 30
    while json.loads(kept.read_text())["elapsed_s"] < 0.2:  # written while the run goes on
        assert time.monotonic() < deadline, "the run's time was not written while it ran"
        time.sleep(0.02)
    first = clock.stop()
    assert round(first, 1) >= 0.2 and json.loads(kept.read_text())["elapsed_s"] == round(first, 1)
    assert clock.complete
    kept.write_text(json.dumps({"elapsed_s": 10000.0}))  # an earlier part's hours
    resumed = runs.RunClock(tmp_path / "checkpoints", resumed=True)
    assert resumed.stop() >= 10000 and resumed.complete  # a next part adds to them
    fresh = runs.RunClock(tmp_path / "checkpoints", resumed=False)
    assert fresh.stop() < 10000 and fresh.complete  # a fresh run starts from zero
    kept.write_text("{not json")
    unknown = runs.RunClock(tmp_path / "checkpoints", resumed=True)
    assert unknown.stop() < 10000 and not unknown.complete  # its earlier time unknown: said so


def test_the_run_clock_keeps_each_parts_code_and_machine(tmp_path, monkeypatch):
    """A run over three parts: one whose file kept only the time (code and machine unknown),
    then two parts of this process, each with its seconds, code and machine, in order; the
    file holds them for the next part, the record takes them from the clock."""
    from recbole_umi.provenance import code_version, machine

    kept = tmp_path / "checkpoints" / "elapsed.json"
    kept.parent.mkdir()
    kept.write_text(json.dumps({"elapsed_s": 300.0}))  # kept by code that recorded the time alone
    second = runs.RunClock(tmp_path / "checkpoints", resumed=True)
    assert second.stop() >= 300
    assert [part["seconds"] for part in second.parts][:1] == [300.0]
    assert second.parts[0]["code"] is None and second.parts[0]["machine"] is None
    assert second.parts[1]["code"] == code_version() and second.parts[1]["machine"] == machine()
    assert json.loads(kept.read_text())["parts"] == second.parts
    monkeypatch.setattr(runs, "machine", lambda: {"cpu": "another CPU", "cpu_capability": "AVX2", "gpu": None})
    third = runs.RunClock(tmp_path / "checkpoints", resumed=True)
    third.stop()
    assert len(third.parts) == 3 and third.parts[:2] == second.parts
    assert third.parts[2]["machine"]["cpu"] == "another CPU"
    assert abs(sum(part["seconds"] for part in third.parts) - third.seconds()) < 0.2
    assert machine()["cpu_capability"] is not None  # torch is imported here: its vector instructions


def test_the_run_clock_never_fails_a_run_for_its_file(tmp_path, caplog):
    import logging

    caplog.set_level(logging.WARNING)  # whatever level an earlier run in this process left
    (tmp_path / "file").write_text("")  # a file where its folder should be: nothing can be written
    clock = runs.RunClock(tmp_path / "file", resumed=False)
    assert clock.stop() >= 0
    assert "the run's time so far is not kept" in caplog.text
