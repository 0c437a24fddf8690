"""faiss retrieval: exact top N of max-over-interests scores, the approximate indexes, empty
slots, excluded items, diversity re-ranking, and evaluation through the index."""

import faiss
import numpy as np
import pytest
import torch

from recbole_umi.registry import PLUGIN_MODELS
from recbole_umi.retrieval import (
    IndexSpec,
    InterestRetriever,
    auto_nlist,
    build_index,
    category_coverage,
    diversify,
    index_parameters,
)
from recbole_umi.settings import SettingsError
from tests.conftest import build


def brute_force(interests, items, n):
    scores = torch.einsum("bkd,nd->bkn", interests, items).max(dim=1).values
    scores[:, 0] = -float("inf")  # the padding item
    return scores.topk(n, dim=1)


def test_matches_brute_force_max_over_interests():
    torch.manual_seed(0)
    items = torch.randn(201, 8)
    interests = torch.randn(5, 3, 8)
    expected_scores, expected_items = brute_force(interests, items, 20)
    got_scores, got_items = InterestRetriever(items).search(interests, 20)
    np.testing.assert_array_equal(got_items, expected_items.numpy())
    np.testing.assert_allclose(got_scores, expected_scores.numpy(), rtol=1e-5)


@pytest.mark.parametrize("spec", [IndexSpec("ivf", nlist=4, nprobe=4), IndexSpec("hnsw", hnsw_m=8, ef_search=400)])
def test_approximate_indexes_searched_widely_are_exact(spec):
    # IVF probing every cell and HNSW with a candidate list larger than the catalogue find
    # every item's true score
    torch.manual_seed(1)
    items, interests = torch.randn(301, 8), torch.randn(4, 3, 8)
    expected_scores, expected_items = brute_force(interests, items, 10)
    got_scores, got_items = InterestRetriever(items, spec).search(interests, 10)
    np.testing.assert_array_equal(got_items, expected_items.numpy())
    np.testing.assert_allclose(got_scores, expected_scores.numpy(), rtol=1e-5)


def test_index_parameters_are_the_built_ones():
    vectors = np.random.default_rng(0).standard_normal((400, 8)).astype(np.float32)
    # 400 items: auto_nlist is min(round(4 * 20), 400 // 39) = 10 cells; nprobe 16 is cut to 10
    assert index_parameters(build_index(vectors, IndexSpec("ivf"))) == {"kind": "ivf", "nlist": 10, "nprobe": 10}
    hnsw = build_index(vectors, IndexSpec("hnsw", hnsw_m=12, ef_construction=40, ef_search=64))
    assert index_parameters(hnsw) == {"kind": "hnsw", "hnsw_m": 12, "ef_construction": 40, "ef_search": 64}
    assert index_parameters(faiss.deserialize_index(faiss.serialize_index(hnsw))) == index_parameters(hnsw)
    assert index_parameters(build_index(vectors)) == {"kind": "exact"}


def test_ivf_short_lists_are_marked_empty():
    # two far-apart clusters of 5 items; probing one cell finds at most the 5 items of a cell
    items = np.zeros((11, 2), np.float32)
    items[1:6] = [10, 0] + np.random.default_rng(0).normal(size=(5, 2)) * 0.01
    items[6:] = [-10, 0] + np.random.default_rng(1).normal(size=(5, 2)) * 0.01
    retriever = InterestRetriever(items, IndexSpec("ivf", nlist=2, nprobe=1))
    scores, ids = retriever.search(np.array([[1.0, 0.0]], np.float32), 7)
    assert sorted(ids[0, :5].tolist()) == [1, 2, 3, 4, 5]
    assert ids[0, 5:].tolist() == [-1, -1] and np.isneginf(scores[0, 5:]).all()


def test_single_interest_bad_n_and_exclusion():
    items = torch.eye(4)  # item 0 (padding) is never returned
    retriever = InterestRetriever(items)
    _, ids = retriever.search(torch.tensor([[0.0, 0.0, 1.0, 0.5]]), 2)
    assert ids.tolist() == [[2, 3]]
    with pytest.raises(ValueError, match="n must be"):
        retriever.search(torch.ones(1, 4), 4)
    # two interests both rank item 3 first: excluded, it is gone from both; each item once
    interests = torch.tensor([[[0.0, 0.1, 0.2, 1.0], [0.0, 0.3, 0.0, 0.9]]])
    scores, ids = retriever.search(interests, 3, exclude=[[3]])
    assert ids.tolist() == [[1, 2, -1]]  # only 3 items exist besides padding
    np.testing.assert_allclose(scores[0, :2], [0.3, 0.2])
    _, ids = retriever.search(interests, 3)
    assert ids.tolist() == [[3, 1, 2]]


def test_auto_nlist():
    assert auto_nlist(1_000_000) == 4000
    assert auto_nlist(3260) == 83  # 3260 // 39, below 4 sqrt(3260) = 228
    assert auto_nlist(10) == 1


def test_diversify_hand_computed():
    # candidates 1..4 with scores 1.0, 0.9, 0.8, 0.5; categories: 1 {A}, 2 {A}, 3 {A, B}, 4 {C}
    categories = np.zeros((5, 3), bool)
    categories[1, 0] = categories[2, 0] = categories[3, 0] = categories[3, 1] = categories[4, 2] = True
    scores, ids = np.array([[1.0, 0.9, 0.8, 0.5]]), np.array([[1, 2, 3, 4]])
    # lam 0: the candidates' order
    assert diversify(scores, ids, categories, 3, 0.0)[1].tolist() == [[1, 2, 3]]
    # lam 0.3: after 1 {A}, 2 and 3 score 0.9-0.3, 0.8-0.3, 4 stays 0.5 -> 2 (0.6);
    # then 3 shares A with two picked items: 0.8-0.6 = 0.2 < 0.5 -> 4
    picked_scores, picked = diversify(scores, ids, categories, 3, 0.3)
    assert picked.tolist() == [[1, 2, 4]]
    np.testing.assert_allclose(picked_scores, [[1.0, 0.9, 0.5]])  # the original scores
    # lam 0.6: after 1, 2 -> 0.3, 3 -> 0.2, 4 -> 0.5: 4; then 2 (0.3) before 3 (0.2)
    assert diversify(scores, ids, categories, 3, 0.6)[1].tolist() == [[1, 4, 2]]
    # an empty slot is never picked
    assert diversify(scores, np.array([[1, 2, -1, 4]]), categories, 3, 0.0)[1].tolist() == [[1, 2, 4]]
    # coverage: {A} + {A} + {C} covers 2 of 3 categories; {A} + {A, B} + {C} all 3
    np.testing.assert_allclose(category_coverage(np.array([[1, 2, 4], [1, 3, 4]]), categories), [2 / 3, 1.0])
    with pytest.raises(ValueError, match="lam"):
        diversify(scores, ids, categories, 3, -1.0)


MODELS = sorted(PLUGIN_MODELS)


@pytest.mark.parametrize("model_name", MODELS)
def test_exact_faiss_evaluation_ranks_as_full_sort(tiny_data, model_name):
    from recbole_umi.evaluation import IndexScorer

    config, train_data, valid_data, model = build(tiny_data, model_name, topk=[5], retrieval="faiss_exact")
    model.eval()
    scorer = IndexScorer.from_config(config, model)
    for batch in (next(iter(train_data)), next(iter(valid_data))[0]):
        with torch.no_grad():
            full = model.full_sort_predict(batch)
            full[:, 0] = -torch.inf  # RecBole's evaluation masks the padding item
            through_index = scorer(batch)
        expected_scores, expected_items = full.topk(5, dim=1)
        got_scores, got_items = through_index.topk(5, dim=1)
        assert torch.equal(got_items, expected_items)
        assert torch.allclose(got_scores, expected_scores, atol=1e-5)
        assert torch.isinf(through_index).sum(dim=1).eq(model.n_items - 5).all()  # only the top 5 scored


def test_each_evaluation_indexes_the_weights_it_evaluates(tiny_data, tmp_path):
    """The trainer builds the index at each evaluation from the weights of that moment (no
    cache to go stale after a training step or loaded weights)."""
    from recbole_umi.checkpoint import get_trainer

    config, train_data, valid_data, model = build(tiny_data, "YoutubeDNN", topk=[5], retrieval="faiss_exact")
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    batch = next(iter(valid_data))[0]
    trainer.evaluate(valid_data, load_best_model=False)
    first = trainer.index_scorer
    with torch.no_grad():
        before = first(batch)
        model.item_embedding.weight.mul_(-1)  # an in-place change, like an optimizer step
    trainer.evaluate(valid_data, load_best_model=False)
    assert trainer.index_scorer is not first
    with torch.no_grad():
        after = trainer.index_scorer(batch)
        expected = brute_force(model(batch), model.item_embeddings(), 5).indices
    assert torch.equal(after.topk(5).indices, expected)
    assert not torch.equal(after.topk(5).indices, before.topk(5).indices)


def test_full_sort_builds_no_index(tiny_data):
    from recbole_umi.checkpoint import get_trainer

    config, _, valid_data, model = build(tiny_data, "UMI", topk=[5])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.evaluate(valid_data, load_best_model=False)
    assert trainer.index_scorer is None


def test_retrieval_refused_for_recbole_models(tiny_data):
    with pytest.raises(SettingsError, match="'retrieval' = 'faiss_exact': must be 'full_sort' for RecBole's own models"):
        build(tiny_data, "SASRec", retrieval="faiss_exact", train_neg_sample_args=None)
    with pytest.raises(SettingsError, match="retrieval"):
        build(tiny_data, "UMI", retrieval="faiss")


def test_a_sampled_evaluation_refuses_an_index_to_evaluate_with_but_an_export_chooses_one(tiny_data):
    """A sampled evaluation (RecBole's protocol, uni100) scores its candidates without any
    index: a run asking for one is refused before it trains. An export of such a run chooses
    its index with the same setting, and evaluates nothing: not refused."""
    from recbole_umi.export import export
    from recbole_umi.quick_start import run
    from recbole_umi.recommend import Recommender
    from tests.conftest import tiny_config

    sampled = {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "uni100", "group_by": "user"}
    settings = tiny_config(tiny_data, epochs=1, eval_protocol="recbole", eval_args=sampled)
    message = "'retrieval' = 'faiss_exact': needs a full-sort evaluation: eval_args' mode is {'valid': 'uni100'"
    with pytest.raises(SettingsError, match=message):
        run("UMI", "tiny", config_dict={**settings, "retrieval": "faiss_exact"})
    assert not (tiny_data.parent / "saved").exists()  # refused before anything trained
    run("UMI", "tiny", config_dict=settings)
    best = next(p for p in (tiny_data.parent / "saved").glob("*.pth") if not p.stem.endswith("-last"))
    out = export(best, tiny_data.parent / "exported", cmd_args=["--retrieval=faiss_exact"])
    assert Recommender(out).recommend(users=["1"], n=3)


def test_a_run_evaluated_through_an_exact_index_reports_the_full_sort_figures(tiny_data):
    from recbole_umi.quick_start import run
    from tests.conftest import tiny_config

    settings = tiny_config(tiny_data, epochs=1, eval_protocol="user_split", topk=[5, 10], metrics=["Recall", "NDCG"],
                           valid_metric="Recall@10")
    full = run("UMI", "tiny", config_dict=settings, saved=False)
    through_index = run("UMI", "tiny", config_dict={**settings, "retrieval": "faiss_exact"}, saved=False)
    assert through_index["test_result"] == full["test_result"]
    assert through_index["test_per_user"] == full["test_per_user"]
    ivf = run("UMI", "tiny", config_dict={**settings, "retrieval": "faiss_ivf", "retrieval_nlist": 1}, saved=False)
    assert ivf["test_result"] == full["test_result"]  # one cell, searched: exact


@pytest.mark.parametrize("exclusion", [{"exclude_history": True}, {"also_exclude_history": True}])
def test_an_index_searches_past_the_history_the_evaluation_leaves_out(tiny_data, exclusion):
    """With the users' history left out of the ranking, the index must be searched past those
    items: a top N taken with them and masked afterwards would fill their places with
    arbitrary items, and the figures would differ from the full sort's."""
    from recbole_umi.quick_start import run
    from tests.conftest import tiny_config

    settings = tiny_config(tiny_data, epochs=1, eval_protocol="user_split", topk=[5, 10], metrics=["Recall", "NDCG"],
                           valid_metric="Recall@10", **exclusion)
    full = run("UMI", "tiny", config_dict=settings, saved=False)
    through_index = run("UMI", "tiny", config_dict={**settings, "retrieval": "faiss_exact"}, saved=False)
    assert through_index["test_per_user"] == full["test_per_user"]
    assert through_index["test_result"] == full["test_result"]
    assert through_index["unseen"] == full["unseen"]
    assert (full["unseen"] is not None) == ("also_exclude_history" in exclusion)


def test_short_lists_are_warned_of_once_per_evaluation(tiny_data, caplog):
    """An IVF index whose probed cell holds fewer items than N: the empty places are -inf
    (never counted as found items) and a warning names how many users it hit, once."""
    import logging

    from recbole_umi.evaluation import IndexScorer

    _, train_data, _, model = build(tiny_data, "YoutubeDNN", topk=[20], valid_metric="Recall@20")
    model.eval()
    scorer = IndexScorer(model, IndexSpec("ivf", nlist=8, nprobe=1), 20, "faiss_ivf")
    batch = next(iter(train_data))
    with caplog.at_level(logging.WARNING), torch.no_grad():
        first = scorer(batch)
        scorer(batch)
    warnings = [r.getMessage() for r in caplog.records if "fewer than 20 items" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("retrieval faiss_ivf: ")
    assert (torch.isfinite(first).sum(dim=1) < 20).any()
