"""The sweep command (Figure 2) on tiny data: a run per value and seed, the CSV, the figure."""

import csv
import json

import pytest

from recbole_umi.experiments import sweep
from recbole_umi.experiments.runs import SettingsMismatchError
from tests.conftest import write_config


def test_sweep_writes_csv_and_figure_and_resumes(tiny_data, tmp_path, monkeypatch):
    config = write_config(tmp_path / "tiny.yaml", epochs=1, eval_protocol="user_split", data_path=str(tiny_data),
                          checkpoint_dir=str(tmp_path / "saved"), topk=[5, 10])
    argv = ["--model=UMI", "--setting=n_interests", "--values=2,3", "--dataset=tiny", "--seeds=1,2",
            f"--out={tmp_path / 'out'}", f"--config_files={config}"]
    from recbole_umi.experiments import runs as compare

    order, real_run = [], compare.run
    monkeypatch.setattr(compare, "run", lambda *a, **k: order.append((a[3]["n_interests"], a[3]["seed"])) or real_run(*a, **k))
    summary = sweep.main(argv)
    assert order == [(2, 1), (3, 1), (2, 2), (3, 2)]  # seed by seed: a sweep cut short is complete for seed 1
    assert list(summary) == [2, 3]
    with (tmp_path / "out" / "sweep.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "n_interests" and sorted(rows[0][1:]) == sorted(
        [f"{prefix}{m}@{n} {stat}" for prefix in ("", "valid ") for m in ("HitRate", "Precision") for n in (5, 10)
         for stat in ("mean", "std")] + [f"{d} {stat}" for d in ("interest cosine", "routing overlap") for stat in ("mean", "std")])
    runs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "n_interests=2" / "runs").glob("*.json")]
    valid_column = rows[0].index("valid HitRate@5 mean")
    assert float(rows[1][valid_column]) == pytest.approx(
        100 * sum(r["best_valid_result"]["recall@5"] for r in runs) / 2, abs=1e-3)
    column = rows[0].index("HitRate@5 mean")
    assert [r[0] for r in rows[1:]] == ["2", "3"]
    assert float(rows[1][column]) == pytest.approx(summary[2][1]["HitRate@5"][0], abs=1e-4)
    overlap = rows[0].index("routing overlap mean")
    assert float(rows[1][overlap]) == pytest.approx(
        sum(r["interest_diagnostics"]["routing_overlap"] for r in runs) / 2, abs=1e-4)
    assert (tmp_path / "out" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    for k in (2, 3):  # each value's runs carry its setting
        runs = sorted((tmp_path / "out" / f"n_interests={k}" / "runs").glob("*.json"))
        assert len(runs) == 2 and f'"n_interests": {k}' in runs[0].read_text()
    monkeypatch.setattr("recbole_umi.experiments.runs.run", lambda *a, **k: pytest.fail("nothing should train"))
    assert sweep.main(argv) == summary
    # a finished run of the last value and seed made with other settings stops the sweep
    # before anything trains, though seed 1 would come first
    (tmp_path / "out" / "n_interests=2" / "runs" / "UMI__seed1.json").unlink()
    last = tmp_path / "out" / "n_interests=3" / "runs" / "UMI__seed2.json"
    record = json.loads(last.read_text())
    last.write_text(json.dumps({**record, "settings": {**record["settings"], "learning_rate": 0.5}}))
    with pytest.raises(SettingsMismatchError, match="n_interests=3/runs/UMI__seed2.json"):
        sweep.main(argv)


def test_the_swept_setting_is_not_also_given(tmp_path):
    with pytest.raises(ValueError, match="with --values"):
        sweep.main(["--model=UMI", "--setting=n_interests", "--values=2", f"--out={tmp_path}", "--n_interests=3"])


def test_a_value_listed_twice_is_refused_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "compare", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=r"setting 'values' = \[2, 3, 2\]: lists 2 more than once"):
        sweep.main(["--model=UMI", "--setting=n_interests", "--values=2,3,2", f"--out={tmp_path}"])


def test_a_column_some_values_lack_is_left_empty(tmp_path):
    """One interest has no interest diagnostics: its row leaves those cells empty."""
    summary = {
        1: (["HitRate@5"], {"HitRate@5": (10.0, 1.0)}),
        2: (["HitRate@5", "interest cosine"], {"HitRate@5": (12.5, 0.5), "interest cosine": (0.8, 0.01)}),
    }
    sweep.write_csv(summary, "n_interests", tmp_path / "sweep.csv")
    with (tmp_path / "sweep.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["n_interests", "HitRate@5 mean", "HitRate@5 std", "interest cosine mean", "interest cosine std"],
        ["1", "10.0000", "1.0000", "", ""],
        ["2", "12.5000", "0.5000", "0.8000", "0.0100"],
    ]


def test_the_figure_is_drawn_again_from_the_csv(tmp_path):
    summary = {2: (["HitRate@10", "valid HitRate@10", "interest cosine"],
                   {"HitRate@10": (9.5, 0.2), "valid HitRate@10": (9.9, 0.1), "interest cosine": (0.6, 0.01)}),
               0.1: (["HitRate@10", "valid HitRate@10"], {"HitRate@10": (8.0, 0.0), "valid HitRate@10": (8.5, 0.3)})}
    sweep.write_csv(summary, "lambda", tmp_path / "sweep.csv")
    setting, read = sweep.read_summary(tmp_path / "sweep.csv")
    assert setting == "lambda" and read == {value: (list(row), row) for value, (_, row) in summary.items()}
    sweep.plot(read, setting, "test", tmp_path / "sweep.png", n_seeds=1)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
