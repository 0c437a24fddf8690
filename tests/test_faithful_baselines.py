"""The baselines as their official code has them: ComiRec-DR's maps per history position,
ComiRec-SA's position embedding and biases, MIND's per-user number of interests; each
against values computed by hand (numpy loops written from the official code's equations)."""

import numpy as np
import pytest
import torch

from recbole_umi.settings import migrate_saved_settings
from recbole_umi.towers.layers import PositionMaps, SelfAttentiveExtractor


def test_comirec_dr_votes_are_the_map_of_their_position():
    rng = np.random.default_rng(0)
    t, d, k = 3, 2, 2
    maps = PositionMaps(t, d, k)
    weight = rng.standard_normal((t, k * d, d))
    with torch.no_grad():
        maps.weight.copy_(torch.from_numpy(weight).float())
    history = rng.standard_normal((1, t, d))
    votes = maps(torch.from_numpy(history).float()).detach().numpy()
    for position in range(t):
        by_hand = weight[position] @ history[0, position]  # K*d: the official reduce_sum(w[:, t] * u, axis=3)
        assert np.allclose(votes[0, position].reshape(-1), by_hand, atol=1e-5)
    # the same item at two positions gets two different sets of votes
    same = torch.from_numpy(np.repeat(history[:, :1], t, axis=1)).float()
    same_votes = maps(same)
    assert not torch.allclose(same_votes[0, 0], same_votes[0, 1])


def test_comirec_sa_attends_with_positions_and_biases_and_sums_items_without_them():
    rng = np.random.default_rng(1)
    t, d, hidden, k = 3, 2, 4, 2
    extractor = SelfAttentiveExtractor(d, hidden, k, max_length=t)
    w1, b1 = rng.standard_normal((hidden, d)), rng.standard_normal(hidden)
    w2, b2 = rng.standard_normal((k, hidden)), rng.standard_normal(k)
    positions = rng.standard_normal((t, d))
    with torch.no_grad():
        for layer, (w, b) in zip((extractor.attention[0], extractor.attention[2]), ((w1, b1), (w2, b2))):
            layer.weight.copy_(torch.from_numpy(w).float())
            layer.bias.copy_(torch.from_numpy(b).float())
        extractor.positions.copy_(torch.from_numpy(positions).float())
    history = rng.standard_normal((1, t, d))
    mask = np.array([[True, True, False]])  # the last position is padding
    interests, attention = extractor(torch.from_numpy(history).float(), torch.from_numpy(mask))
    scores = np.array([w2 @ np.tanh(w1 @ (history[0, i] + positions[i]) + b1) + b2 for i in range(t)])  # T x K
    scores[2] = -np.inf
    weights = np.exp(scores - scores[:2].max(axis=0))
    weights /= weights.sum(axis=0)
    assert np.allclose(attention[0].detach().numpy(), weights, atol=1e-5)
    assert np.allclose(interests[0].detach().numpy(), weights.T @ history[0], atol=1e-5)  # items, no positions


def test_mind_dynamic_interests_follow_log2_of_the_history():
    counts = {1: 1, 2: 1, 3: 1, 4: 2, 7: 2, 8: 3, 10: 3}  # max(1, min(3, floor(log2 n)))
    from recbole_umi.towers.mind import MINDTower

    tower = MINDTower.__new__(MINDTower)
    torch.nn.Module.__init__(tower)
    tower.n_interests = 3
    mask = torch.tensor([[i < n for i in range(10)] for n in counts])
    assert tower.interest_counts(mask).tolist() == list(counts.values())


def test_mind_dynamic_interests_change_no_score_but_the_copies(tiny_data):
    from tests.conftest import build

    _, train_data, _, model = build(tiny_data, "MIND", n_interests=3, dynamic_interests=True, MAX_ITEM_LIST_LENGTH=5)
    model.eval()
    batch = next(iter(train_data))
    with torch.no_grad():
        interests = model(batch)
        lengths = (batch[model.ITEM_SEQ] != 0).sum(dim=1)
        kept = model.tower.interest_counts(batch[model.ITEM_SEQ] != 0)
        for row in range(len(lengths)):
            for k in range(kept[row], 3):
                assert torch.equal(interests[row, k], interests[row, 0])
        # the scores are those of the kept interests alone
        scores = model.full_sort_predict(batch)
        for row in range(5):
            alone = (interests[row, : kept[row]] @ model.item_embeddings().t()).max(dim=0).values
            assert torch.allclose(scores[row], alone)
    with pytest.raises(Exception, match="readout_power"):
        build(tiny_data, "MIND", dynamic_interests=True, readout_power=2.0, harder_negatives=False)


def test_mind_dynamic_interests_route_over_the_kept_capsules_alone(tiny_data, monkeypatch):
    """Algorithm 1 of the MIND paper fixes K'_u before routing: a user's items are routed over
    its K'_u capsules only. With K'_u = 1 every item goes wholly to the first capsule, so it
    is squash(S sum_i e_i) whatever the logits (by hand); with K'_u = 2 the third capsule
    draws no weight and stays 0 (it used to take a share of every item's weight)."""
    from recbole_umi.towers.layers import squash
    from tests.conftest import build

    _, train_data, _, model = build(tiny_data, "MIND", n_interests=3, dynamic_interests=True, MAX_ITEM_LIST_LENGTH=5)
    tower = model.tower
    captured = []
    real = tower.interest_mlp.forward_shared
    monkeypatch.setattr(tower.interest_mlp, "forward_shared", lambda capsules, profile: captured.append(capsules)
                        or real(capsules, profile))
    batch = next(iter(train_data))
    items = batch[model.ITEM_SEQ]
    mask = items != 0
    kept = tower.interest_counts(mask)
    assert set(kept.tolist()) == {1, 2}  # tiny data's histories of 1-5 items: both cases
    for training in (True, False):  # the training draw of the logits and the evaluation one
        tower.train(training)
        captured.clear()
        with torch.no_grad():
            _, routing = tower.interests_and_routing(batch)
        capsules = captured[0]
        for row in range(len(items)):
            real_items = mask[row]
            assert torch.allclose(routing[row][real_items].sum(dim=1), torch.ones(int(real_items.sum())))
            assert torch.all(routing[row][:, kept[row]:] == 0) and torch.all(capsules[row, kept[row]:] == 0)
            if kept[row] == 1:
                summed = tower.shared_map(tower.item_embedding.weight[items[row][real_items]]).sum(dim=0)
                torch.testing.assert_close(capsules[row, 0], squash(summed), rtol=1e-5, atol=1e-6)


def test_models_saved_before_the_options_keep_what_they_computed():
    migrated = migrate_saved_settings("ComiRecDR", {"comirec_variant": "DR"})
    assert migrated["comirec_maps"] == "shared" and migrated["position_embedding"] is False
    assert migrate_saved_settings("ComiRecDR", {"comirec_maps": "per_position"})["comirec_maps"] == "per_position"
    assert migrate_saved_settings("MIND", {})["dynamic_interests"] is False
    assert migrate_saved_settings("UMISA", {})["refine_interests"] is True
