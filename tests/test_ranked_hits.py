"""Only ranked items are hits: a place of the top N scored -inf (an index that returned fewer
than N items, a user with fewer than N items left once the history is excluded) holds no
ranked item, where RecBole's ``topk`` fills it with an arbitrary one and counted a target
there as a hit (:class:`recbole_umi.evaluation.RankedOnlyCollector`)."""

import pytest
import torch
from recbole.evaluator import Evaluator
from recbole.evaluator.collector import Collector
from recbole.utils import EvaluatorType

from recbole_umi.evaluation import IndexedEvaluation, RankedOnlyCollector
from recbole_umi.quick_start import run
from tests.conftest import tiny_config

METRICS = ["Recall", "Precision", "NDCG", "Hit", "MRR"]


class _Config(dict):
    def __getitem__(self, key):
        return dict.get(self, key)


def config(topk=5):
    return _Config(topk=[topk], metrics=METRICS, metric_decimal_place=6, eval_type=EvaluatorType.RANKING,
                   device=torch.device("cpu"), valid_metric=f"recall@{topk}", LABEL_FIELD="label",
                   eval_args={"mode": {"valid": "full", "test": "full"}})


def evaluate(collector_class, scores, positive_u, positive_i):
    collector = collector_class(config())
    collector.eval_batch_collect(scores, None, positive_u, positive_i)
    return Evaluator(config()).evaluate(collector.get_data_struct())


def test_a_target_in_an_unranked_place_is_a_miss_by_hand():
    # 21 items; user 0 has only items 19 and 20 left (the rest excluded or not found) and its
    # one target is item 14; user 1 has every item ranked, its targets 3 (first) and 14 (not in its top 5)
    scores = torch.full((2, 21), -torch.inf)
    scores[0, 19], scores[0, 20] = 2.0, 1.0
    scores[1, 1:] = torch.arange(20, 0, -1, dtype=torch.float)  # item 1 first, 2 second, ...
    scores[1, 3] = 100.0
    positive_u, positive_i = torch.tensor([0, 1, 1]), torch.tensor([14, 3, 14])
    assert torch.topk(scores[0], 5).indices.tolist()[:2] == [19, 20]
    ours = evaluate(RankedOnlyCollector, scores, positive_u, positive_i)
    # user 0: no hit; user 1: one of its 2 targets, at place 1
    assert ours["recall@5"] == pytest.approx((0 + 1 / 2) / 2)
    assert ours["precision@5"] == pytest.approx((0 + 1 / 5) / 2)
    assert ours["hit@5"] == pytest.approx(0.5) and ours["mrr@5"] == pytest.approx(0.5)
    assert ours["ndcg@5"] == pytest.approx((0 + 1 / (1 + 1 / torch.log2(torch.tensor(3.0)).item())) / 2, abs=1e-6)
    # control: RecBole's own collector credits user 0's filler item 14 (topk lists it among the -inf places)
    if 14 in torch.topk(scores[0], 5).indices.tolist():
        assert evaluate(Collector, scores, positive_u, positive_i)["recall@5"] > ours["recall@5"]


def test_with_every_place_ranked_it_is_recboles_collector():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(30, 50, generator=generator)
    scores[:, 0] = -torch.inf  # the padding item, as RecBole sets it
    positive_u = torch.repeat_interleave(torch.arange(30), 3)
    positive_i = torch.randint(1, 50, (90,), generator=generator)
    assert evaluate(RankedOnlyCollector, scores, positive_u, positive_i) == evaluate(Collector, scores, positive_u,
                                                                                     positive_i)


def test_an_ivf_evaluation_counts_the_items_the_index_found(tiny_data, tmp_path, monkeypatch):
    """40 items in 10 cells, one probed: users get fewer than 5 items. Each test user's
    recall@5 is its hits among the items the index found, over its targets."""
    monkeypatch.chdir(tmp_path)
    batches = []
    original = IndexedEvaluation._full_sort_batch_eval

    def recorded(self, batched_data):
        interaction, scores, positive_u, positive_i = original(self, batched_data)
        batches.append((scores.clone(), positive_u.clone(), positive_i.clone()))
        return interaction, scores, positive_u, positive_i

    monkeypatch.setattr(IndexedEvaluation, "_full_sort_batch_eval", recorded)
    settings = tiny_config(tiny_data, epochs=1, eval_protocol="user_split", retrieval="faiss_ivf", retrieval_nlist=10,
                           retrieval_nprobe=1, checkpoint_dir=str(tmp_path / "saved"))
    result = run("UMI", "tiny", config_dict=settings)
    scores, positive_u, positive_i = batches[-1]  # the test users, one batch
    values, top = torch.topk(scores, 5, dim=1)
    expected, short = [], 0
    for row in range(len(scores)):
        targets = set(positive_i[positive_u == row].tolist())
        found = [item for item, value in zip(top[row].tolist(), values[row].tolist()) if value > -torch.inf]
        short += len(found) < 5
        expected.append(len(targets & set(found)) / len(targets))
    assert short > 0  # the case this is about
    assert result["test_per_user"]["recall@5"] == pytest.approx(expected)
