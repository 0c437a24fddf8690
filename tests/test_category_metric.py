"""CategoryCoverage: the paper's diversity metric, computed by RecBole's evaluator in any run."""

import pytest
import torch
from recbole.evaluator.collector import DataStruct

from recbole_umi.evaluation import CategoryCoverage
from recbole_umi.quick_start import run
from recbole_umi.settings import SettingsError
from tests.conftest import tiny_config

GENRES = ["Action", "Comedy", "Drama"]


def test_hand_computed():
    # items 1..4; categories: 1 {A}, 2 {A, B}, 3 {C}, 4 {B}; item 0 is padding
    categories = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)
    struct = DataStruct()
    struct.set("rec.items", torch.tensor([[1, 2, 3], [4, 1, 2]]))
    struct.set("data.item_categories", categories)
    metric = CategoryCoverage({"topk": [1, 2, 3], "metric_decimal_place": 4})
    # top 1: {A} 1/3, {B} 1/3; top 2: {A, B} 2/3, {A, B} 2/3; top 3: all 3/3, {A, B} 2/3
    assert metric.calculate_metric(struct) == {
        "categorycoverage@1": round(1 / 3, 4), "categorycoverage@2": round(2 / 3, 4), "categorycoverage@3": round(5 / 6, 4)}


def with_item_file(tiny_data):
    rows = ["item_id:token\tgenre:token_seq"] + [f"{i}\t{GENRES[i % 3]}" + (" Drama" if i % 4 == 0 else "") for i in range(1, 41)]
    (tiny_data / "tiny" / "tiny.item").write_text("\n".join(rows) + "\n")
    return tiny_config(tiny_data, epochs=1, eval_protocol="user_split", metrics=["Recall", "CategoryCoverage"])


def test_a_run_reports_it(tiny_data):
    settings = with_item_file(tiny_data)
    result = run("UMI", "tiny", config_dict={**settings, "category_field": "genre"}, saved=False)
    coverage = result["test_result"]["categorycoverage@5"]
    assert 1 / 3 <= coverage <= 1  # five items cover at least one of three genres
    assert "recall@5" in result["test_result"]
    # RecBole's own models too
    sasrec = run("SASRec", "tiny", config_dict={**settings, "category_field": "genre", "train_neg_sample_args": None},
                 saved=False)
    assert 1 / 3 <= sasrec["test_result"]["categorycoverage@5"] <= 1


def test_needs_a_category_field(tiny_data, monkeypatch):
    settings = with_item_file(tiny_data)
    with pytest.raises(SettingsError, match="'category_field' = empty: must name the item field"):
        run("UMI", "tiny", config_dict=settings, saved=False)
    monkeypatch.setattr("recbole.trainer.Trainer.fit", lambda *a, **k: pytest.fail("must fail before training"))
    with pytest.raises(SettingsError, match="must be a column of tiny.item"):
        run("UMI", "tiny", config_dict={**settings, "category_field": "director"}, saved=False)
