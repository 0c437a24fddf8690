"""The interpretation command on a trained UMI over generated data, and the truth recovery."""

import csv
import json

import numpy as np
import pytest

from recbole_umi.datasets.synth import main as generate
from recbole_umi.experiments.interpret import InterpretError, field_recovery, interpret, read_truth
from recbole_umi.quick_start import run

SPEC = dict(users=400, items=300, categories=8, token_fields=3, float_fields=1, signal_token_fields=2,
            signal_float_fields=1, max_interests=3, length_median=12, max_length=40, seed=3)


def trained(tmp_path, model="UMI", **settings):
    generate([str(tmp_path / "data"), *[f"--{k}={v}" for k, v in SPEC.items()]])
    checkpoints = tmp_path / "saved" / model
    run(model, "synth", config_file_list=[str(tmp_path / "data" / "synth.yaml")], config_dict={
        "data_path": str(tmp_path / "data"), "epochs": 2, "state": "ERROR", "show_progress": False,
        "n_negatives": 20, "shared_negatives": False, "n_interests": 3, "MAX_ITEM_LIST_LENGTH": 10,
        "checkpoint_dir": str(checkpoints), **settings})
    return next(p for p in checkpoints.glob("*.pth") if not p.stem.endswith("-last"))


def test_interpret_writes_the_case_study_and_figure_3b(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = trained(tmp_path)
    truth = read_truth(tmp_path / "data" / "synth" / "generator.json", "summary.relevant_fields_by_category")
    out = interpret(checkpoint, tmp_path / "out", "category", n_users=3, top=4, max_categories=5, relevant_fields=truth)
    cases = json.loads((out / "users.json").read_text())
    assert len(cases) == 3
    fields = ["f01", "f02", "f03", "g01"]
    for case in cases:
        assert 1 <= len(case["history"]) <= 10
        for item in case["history"]:
            assert 0 <= item["attention"] <= 1 and abs(sum(item["routing"]) - 1) < 1e-3
            assert len(item["categories"]) == 1 and item["categories"][0].startswith("c")
        assert len(case["interests"]) == 3
        for interest in case["interests"]:
            assert list(interest["field_weights"]) == fields
            assert all(0 <= w <= 1 for w in interest["field_weights"].values())
            assert len(interest["top_items"]) == 4
            named = [c for item in interest["top_items"] for c in item["categories"]]
            assert named.count(interest["dominating_category"]) == max(named.count(c) for c in named)
    with (out / "field_weights_by_category.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["category"] for r in rows] == [f"c{c:03d}" for c in range(1, 9)]
    # every history item of every test user counted once, under its one category
    histories = sum(len(case["history"]) for case in cases)
    assert sum(int(r["clicked_items"]) for r in rows) >= histories
    assert all(0 <= float(r[f]) <= 1 for r in rows for f in fields if int(r["clicked_items"]))
    assert (out / "field_weights_by_category.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recovery = json.loads((out / "truth_recovery.json").read_text())
    assert len(recovery["auc_by_category"]) == 8 and 0 <= recovery["mean_auc"] <= 1
    with pytest.raises(InterpretError, match="not test users"):
        interpret(checkpoint, tmp_path / "out2", "category", users=["nobody"])
    with pytest.raises(InterpretError, match="no column 'genre'"):
        interpret(checkpoint, tmp_path / "out2", "genre")


def test_only_umi_with_refinement(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = trained(tmp_path, use_ir=False)
    with pytest.raises(InterpretError, match="not a UMI with interest refinement"):
        interpret(checkpoint, tmp_path / "out", "category")


def test_field_recovery_hand_computed():
    relevant = np.array([[True, False, False], [True, True, False], [False, False, False]])
    weights = np.array([[0.9, 0.1, 0.5], [0.2, 0.6, 0.4], [0.1, 0.2, 0.3]])
    result = field_recovery(weights, relevant)
    # row 1: 0.9 above both others -> 1; row 2: pairs (0.2 vs 0.4) no, (0.6 vs 0.4) yes -> 0.5;
    # row 3: no relevant field -> left out
    assert result["auc_by_category"][:2] == [1.0, 0.5] and np.isnan(result["auc_by_category"][2])
    assert result["mean_auc"] == 0.75
    assert field_recovery(np.array([[0.5, 0.5]]), np.array([[True, False]]))["mean_auc"] == 0.5  # ties


def test_centred_field_recovery_hand_computed():
    # field 0 is weighted high everywhere; field 1 rises for the category that depends on it
    weights = np.array([[0.9, 0.3], [0.9, 0.1]])
    relevant = np.array([[False, True], [True, False]])
    result = field_recovery(weights, relevant, permutations=2000)
    assert result["auc_by_category"] == [0.0, 1.0] and result["mean_auc"] == 0.5
    # centred on the field means (0.9, 0.2): [[0, 0.1], [0, -0.1]] -> both categories 1
    assert result["centred_auc_by_category"] == [1.0, 1.0] and result["centred_mean_auc"] == 1.0
    # two categories: half the shuffles keep the truth (mean 1), half swap it (mean 0)
    assert 0.45 < result["centred_p"] < 0.55


def test_centred_field_recovery_is_significant_only_when_the_weights_follow_the_truth():
    categories, fields = 20, 4
    relevant = np.zeros((categories, fields), dtype=bool)
    relevant[np.arange(categories), np.arange(categories) % fields] = True
    following = 0.5 + 0.1 * relevant  # each category's own field a little higher
    assert field_recovery(following, relevant, permutations=500)["centred_p"] == 1 / 501
    unrelated = np.random.default_rng(3).random((categories, fields))
    assert field_recovery(unrelated, relevant, permutations=500)["centred_p"] > 0.05


def test_the_heatmap_marks_the_true_fields(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from recbole_umi.experiments.interpret import draw_field_weights

    (tmp_path / "w.csv").write_text("category,clicked_items,f1,f2,f3\nc1,10,0.5,0.2,0.1\nc2,30,0.1,0.6,0.2\n")
    boxes = []
    real = Axes.add_patch
    monkeypatch.setattr(Axes, "add_patch", lambda self, patch: boxes.append(patch.get_xy()) or real(self, patch))
    draw_field_weights(tmp_path / "w.csv", tmp_path / "w.png", "t", relevant_fields={"c1": ["f1"], "c2": ["f2", "f3"]})
    # rows by clicks (c2 first): c2's f2 and f3, then c1's f1
    assert sorted(boxes) == sorted([(0.5, -0.5), (1.5, -0.5), (-0.5, 0.5)])
    assert (tmp_path / "w.png").stat().st_size > 0
