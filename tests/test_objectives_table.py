"""scripts/objectives_table.py on hand-made run records: means over seeds, the paired test
against the first model (checked against scipy), and the objective chosen on validation."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "objectives_table.py"
main = runpy.run_path(str(SCRIPT))["main"]
USERS = [str(u) for u in range(1, 41)]


def write_run(folder: Path, model: str, seed: int, hits: np.ndarray, valid: float) -> None:
    """A run whose test users hit (1) or miss (0) at 50: its HitRate@50 is their mean."""
    record = {"variant": model, "seed": seed, "eval_protocol": "user_split",
              "best_valid_result": {"recall@50": valid}, "test_result": {"recall@50": float(hits.mean())},
              "test_per_user": {"user": USERS, "recall@50": hits.tolist()}}
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    (folder / "runs" / f"{model}__seed{seed}.json").write_text(json.dumps(record))


def test_objectives_table_means_tests_and_the_validation_choice(tmp_path):
    rng = np.random.default_rng(0)
    base = (rng.random(40) < 0.4).astype(float)
    better = base.copy()
    better[np.flatnonzero(base == 0)[:12]] = 1.0  # 12 more hits of 40 users: a clear paired gain
    # objective "a": A and B at 2 seeds; B is better on test and on validation
    write_run(tmp_path / "a", "A", 1, base, valid=0.30)
    write_run(tmp_path / "a", "A", 2, base, valid=0.32)
    write_run(tmp_path / "a", "B", 1, better, valid=0.40)
    write_run(tmp_path / "a", "B", 2, better, valid=0.40)
    # objective "b": A only, one seed; its validation is higher but its test lower than under "a"
    worse = base.copy()
    worse[np.flatnonzero(base == 1)[:3]] = 0.0
    write_run(tmp_path / "b", "A", 1, worse, valid=0.50)

    main([f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "--models=A,B", "--seeds=1,2", f"--out={tmp_path / 'table'}",
          "--significance=ttest"])
    lines = (tmp_path / "table.md").read_text().splitlines()
    a_mean, b_mean = 100 * base.mean(), 100 * better.mean()
    # A is chosen by validation under b (0.50 > mean 0.31) although its test is lower there
    assert lines[4] == f"| A | {a_mean:.2f} ± 0.00 | {100 * worse.mean():.2f} ± 0.00 (1) | b | {100 * worse.mean():.2f} |"
    assert lines[5] == f"| B | {b_mean:.2f} ± 0.00* | - | a | {b_mean:.2f} |"
    rows = (tmp_path / "table.csv").read_text().splitlines()
    p = float(rows[2].split(",")[4])
    assert p == pytest.approx(stats.ttest_rel(100 * base, 100 * better).pvalue, rel=1e-3) and p < 0.05  # 4 significant digits


def test_the_test_over_seeds_marks_what_holds_against_the_training_spread(tmp_path):
    rng = np.random.default_rng(1)
    hits = {}
    for model, rate in (("A", 0.3), ("B", 0.6), ("C", 0.32)):
        for seed in (1, 2, 3):
            hits[model, seed] = (rng.random(40) < rate).astype(float)
            write_run(tmp_path / "a", model, seed, hits[model, seed], valid=rate)
    main([f"a={tmp_path / 'a'}", "--models=A,B,C", "--seeds=1,2,3", f"--out={tmp_path / 'table'}", "--significance=ttest"])
    lines = (tmp_path / "table.md").read_text().splitlines()
    rows = [row.split(",") for row in (tmp_path / "table.csv").read_text().splitlines()]
    assert rows[0][1:6] == ["a mean", "a std", "a seeds", "a p", "a p seeds"]
    for line, row, model in zip(lines[5:7], rows[2:4], ("B", "C")):
        means = [[100 * hits[m, seed].mean() for seed in (1, 2, 3)] for m in ("A", model)]
        welch = stats.ttest_ind(*means, equal_var=False).pvalue
        assert float(row[5]) == pytest.approx(welch, rel=1e-3)
        assert line.split(" | ")[1].endswith("‡") == (welch < 0.05)
    assert lines[5].split(" | ")[1].endswith("*‡") and not lines[6].split(" | ")[1].endswith("‡")  # B clearly, C not


def test_a_stand_in_takes_another_models_runs_and_says_so(tmp_path):
    rng = np.random.default_rng(2)
    a_hits, z_hits = (rng.random(40) < 0.3).astype(float), (rng.random(40) < 0.5).astype(float)
    write_run(tmp_path / "full", "A", 1, a_hits, valid=0.3)
    write_run(tmp_path / "full", "B", 1, np.zeros(40), valid=0.9)  # B's own runs there are not read
    write_run(tmp_path / "other", "Z", 1, z_hits, valid=0.5)
    main([f"full={tmp_path / 'full'}", "--models=A,B", "--seeds=1", f"--out={tmp_path / 'table'}",
          f"--stand_in=B@full=Z@{tmp_path / 'other'}"])
    lines = (tmp_path / "table.md").read_text().splitlines()
    p = stats.ttest_rel(100 * a_hits, 100 * z_hits).pvalue
    # one seed: the two-level test falls back to the paired t-test over the users, and says so
    assert lines[5] == (f"| B | {100 * z_hits.mean():.2f} ± 0.00{'*' if p < 0.05 else ''} (1 seed) [Z] | full | "
                        f"{100 * z_hits.mean():.2f} |")
    assert lines[-1] == f"[Z]: B under full is Z's runs in {tmp_path / 'other'}."
    rows = [row.split(",") for row in (tmp_path / "table.csv").read_text().splitlines()]
    assert rows[0][-1] == "stand-ins" and [row[-1] for row in rows[1:]] == ["", "full=Z"]
    # a stand-in without runs for these seeds: the cell stays empty, and no footnote claims it
    main([f"full={tmp_path / 'full'}", "--models=A,B", "--seeds=2", f"--out={tmp_path / 'none'}",
          f"--stand_in=B@full=Z@{tmp_path / 'other'}"])
    assert "[Z]" not in (tmp_path / "none.md").read_text()
    for wrong in (f"B@full=Z@{tmp_path / 'nowhere'}", f"C@full=Z@{tmp_path / 'other'}", f"B@pop=Z@{tmp_path / 'other'}"):
        with pytest.raises(SystemExit):  # no runs there; not a model of the table; not an objective of it
            main([f"full={tmp_path / 'full'}", "--models=A,B", f"--stand_in={wrong}"])


def test_a_pair_without_a_runs_folder_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([f"a={tmp_path}", "--models=A"])
    assert exit_.value.code == 2 and "NAME=FOLDER with runs/" in capsys.readouterr().err


def test_against_tests_each_model_against_its_own_cell_under_another_objective(tmp_path):
    rng = np.random.default_rng(3)
    hits = {(name, seed): (rng.random(40) < rate).astype(float)
            for name, rate in (("base", 0.3), ("new", 0.5)) for seed in (1, 2)}
    for (name, seed), values in hits.items():
        write_run(tmp_path / name, "A", seed, values, valid=0.3)
    write_run(tmp_path / "base", "B", 1, hits["base", 1], valid=0.3)  # B has no cell under "new"
    main([f"base={tmp_path / 'base'}", f"new={tmp_path / 'new'}", "--models=A,B", "--seeds=1,2",
          "--against=base", f"--out={tmp_path / 'table'}", "--significance=ttest"])
    lines = (tmp_path / "table.md").read_text().splitlines()
    per_user = {name: 100 * (hits[name, 1] + hits[name, 2]) / 2 for name in ("base", "new")}
    test = stats.ttest_rel(per_user["new"], per_user["base"])
    delta = (per_user["new"] - per_user["base"]).mean()
    welch = stats.ttest_ind([100 * hits["new", s].mean() for s in (1, 2)],
                            [100 * hits["base", s].mean() for s in (1, 2)], equal_var=False).pvalue
    star = ("*" if test.pvalue < 0.05 else "") + ("‡" if welch < 0.05 else "")
    assert lines[-4] == "| model | new - base |"
    assert lines[-2] == f"| A | {delta:+.2f}{star} (p = {test.pvalue:.2g}, 2 seeds) |"
    assert lines[-1] == "| B | - |"
    rows = [row.split(",") for row in (tmp_path / "table.csv").read_text().splitlines()]
    assert rows[0][-3:] == ["new - base delta", "new - base p", "new - base p seeds"]
    assert float(rows[1][-3]) == pytest.approx(delta, abs=1e-4)
    assert float(rows[1][-2]) == pytest.approx(test.pvalue, rel=1e-3)
    assert float(rows[1][-1]) == pytest.approx(welch, rel=1e-3)
    assert rows[2][-3:] == ["", "", ""]
    for wrong in ("other", "base"):  # not an objective of the table; the only objective
        args = [f"base={tmp_path / 'base'}", "--models=A", f"--against={wrong}"]
        with pytest.raises(SystemExit):
            main(args if wrong == "base" else [*args, f"new={tmp_path / 'new'}"])


def test_the_default_test_counts_users_and_seeds(tmp_path):
    from recbole_umi.stats import two_level_test

    rng = np.random.default_rng(4)
    hits = {(model, seed): (rng.random(40) < rate).astype(float)
            for model, rate in (("A", 0.3), ("B", 0.5)) for seed in (1, 2, 3)}
    for (model, seed), values in hits.items():
        write_run(tmp_path / "a", model, seed, values, valid=0.3)
    main([f"a={tmp_path / 'a'}", "--models=A,B", "--seeds=1,2,3", f"--out={tmp_path / 'table'}"])
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert "two-level test" in lines[0]
    rows = [row.split(",") for row in (tmp_path / "table.csv").read_text().splitlines()]
    expected = two_level_test([100 * hits["A", s] for s in (1, 2, 3)], [100 * hits["B", s] for s in (1, 2, 3)])
    assert float(rows[2][4]) == pytest.approx(expected["p"], rel=1e-3) and rows[2][5] == ""
    assert lines[5].split(" | ")[1].endswith("*") == (expected["p"] < 0.05) and "‡" not in lines[5]
