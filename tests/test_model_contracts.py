"""Contracts every plugin model must honour, run against each model and loss."""

import pytest
import torch

from recbole_umi.registry import PLUGIN_MODELS
from tests.conftest import build

MODELS = sorted(PLUGIN_MODELS)
# models that learn (Popularity is a fixed ranking: no loss to watch fall, one-dimensional items)
LEARNED = [name for name in MODELS if getattr(PLUGIN_MODELS[name], "learned", True)]
LOSSES = {
    "sampled": {"loss_type": "sampled_softmax", "harder_negatives": False},
    "sampled+HN": {"loss_type": "sampled_softmax", "harder_negatives": True},
    "full": {"loss_type": "full_softmax", "harder_negatives": False},
}


def first_batch(train_data):
    return next(iter(train_data))


SINGLE_INTEREST = {name for name, model_class in PLUGIN_MODELS.items() if not model_class.routes_items}


@pytest.fixture(params=MODELS)
def built(request, tiny_data):
    # K = 2, not the YAML default of 3, so that the shape checks see the configured K
    return build(tiny_data, request.param, **({} if request.param in SINGLE_INTEREST else {"n_interests": 2}))


def test_interest_and_score_shapes(built):
    config, train_data, _, model = built
    batch = first_batch(train_data)
    model.eval()
    interests = model(batch)
    expected_k = 1 if type(model).__name__ in SINGLE_INTEREST else 2
    d = 8 if type(model).__name__ in LEARNED else 1  # embedding_size 8 (TINY_SETTINGS); Popularity's rank score
    assert interests.shape == (len(batch), expected_k, d)
    assert model.item_embeddings().shape == (model.n_items, d)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    # the rows asked for are the table's rows: equal for a lookup, to float rounding for a tower
    # (ProfileDSSM's MLP sums in another order for 6 rows than for 41 at more than one thread)
    torch.testing.assert_close(model.item_embeddings(ids), model.item_embeddings()[ids], rtol=1e-5, atol=1e-6)
    assert model.full_sort_predict(batch).shape == (len(batch), model.n_items)
    assert model.predict(batch).shape == (len(batch),)


def test_predict_equals_gathered_full_sort_predict(built):
    _, train_data, _, model = built
    batch = first_batch(train_data)
    model.eval()
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        gathered = full.gather(1, batch[model.ITEM_ID].unsqueeze(1)).squeeze(1)
        assert torch.allclose(model.predict(batch), gathered, atol=1e-5)


def test_padding_item_does_not_change_interests(built):
    _, train_data, _, model = built
    batch = first_batch(train_data)
    assert (batch[model.ITEM_SEQ] == 0).any(), "the batch must contain padded histories"
    model.eval()
    with torch.no_grad():
        before = model(batch)
        model.item_embedding.weight[0] = torch.randn(model.embedding_size) * 10
        after = model(batch)
    assert torch.allclose(before, after, atol=1e-5)


def test_evaluation_is_repeatable(built):
    _, train_data, _, model = built
    batch = first_batch(train_data)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), model(batch))


@pytest.mark.parametrize("model_name", LEARNED)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_is_finite_and_decreases(tiny_data, model_name, loss):
    # SASRec's default dropout of 0.5 makes one batch's loss too noisy to watch it fall
    no_dropout = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0} if model_name == "SASRecMatching" else {}
    _, train_data, _, model = build(tiny_data, model_name, **LOSSES[loss], **no_dropout)
    batch = first_batch(train_data)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    torch.manual_seed(0)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        value = model.calculate_loss(batch)
        assert torch.isfinite(value)
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5, losses


def test_mind_label_aware_readout_with_finite_power_is_finite(tiny_data):
    _, train_data, _, model = build(tiny_data, "MIND", readout_power=0.5, harder_negatives=False)
    assert torch.isfinite(model.calculate_loss(first_batch(train_data)))


def test_float_profile_buckets_come_from_training_users(tiny_data):
    _, train_data, _, model = build(tiny_data, "UMI", float_profile_buckets=4)
    dataset = train_data.dataset
    users = dataset.inter_feat[dataset.uid_field].unique()
    ages = dataset.user_feat["age"][users].float()
    edges = model.profile.bucket_edges_age
    assert torch.allclose(edges, torch.quantile(ages, torch.tensor([0.25, 0.5, 0.75])).unique())


def test_profile_dssm_item_tower_sees_only_the_candidates(tiny_data):
    """Sampled softmax must not run the item tower over the whole catalogue."""
    _, train_data, _, model = build(tiny_data, "ProfileDSSM", n_negatives=3)
    batch = first_batch(train_data)
    rows = []
    model.item_tower.register_forward_hook(lambda module, inputs, output: rows.append(inputs[0].shape[:-1].numel()))
    model.calculate_loss(batch)
    assert rows == [len(batch) * (1 + 3)]


@pytest.mark.parametrize("switch, absent", [("use_dar", "uganet"), ("use_ir", "field_relevance")])
def test_ablation_builds_no_switched_off_network(tiny_data, switch, absent):
    full = build(tiny_data, "UMI")[3]
    ablated = build(tiny_data, "UMI", **{switch: False})[3]
    assert getattr(full, absent) is not None
    assert getattr(ablated, absent) is None
    assert not any(name.startswith(absent) for name, _ in ablated.named_parameters())
    ablated.eval()
    assert torch.isfinite(ablated.full_sort_predict(first_batch(build(tiny_data, "UMI")[1]))).all()


def test_interest_diagnostics_of_collapsed_interests(tiny_data):
    """ComiRec-DR whose K interest maps are the same map: identical votes, uniform routing,
    identical interests. Known answers: cosine 1, overlap 1, every item routed to the
    first interest (argmax ties go to the first)."""
    from recbole_umi.evaluation import interest_diagnostics

    _, _, valid_data, model = build(tiny_data, "ComiRecDR", n_interests=3, comirec_maps="shared")
    with torch.no_grad():
        one_map = model.interest_maps.weight[:8].clone()
        model.interest_maps.weight.copy_(one_map.repeat(3, 1))
    found = interest_diagnostics(model, valid_data)
    assert found["interest_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert found["routing_overlap"] == pytest.approx(1.0, abs=1e-5)
    assert found["routing_share"] == pytest.approx([1.0, 0.0, 0.0])
    assert found["routing_by_position"] is None  # ComiRec-DR's routing logits start at zero: no draw


def test_routing_by_position_when_the_draw_decides(tiny_data):
    """MIND whose initial routing logits (sigma 1e4) dwarf every agreement u . v: each item
    goes to the interest its position's draw favours (known answer 1); with sigma 0 there
    is no draw to follow."""
    from recbole_umi.evaluation import interest_diagnostics

    _, _, valid_data, model = build(tiny_data, "MIND", n_interests=3, routing_init_std=1e4)
    assert interest_diagnostics(model, valid_data)["routing_by_position"] == pytest.approx(1.0)
    _, _, valid_data, model = build(tiny_data, "MIND", n_interests=3, routing_init_std=0.0)
    assert interest_diagnostics(model, valid_data)["routing_by_position"] is None


def test_interest_diagnostics_by_hand(tiny_data):
    from recbole_umi.evaluation import interest_diagnostics

    _, _, valid_data, model = build(tiny_data, "UMI", n_interests=3)
    found = interest_diagnostics(model, valid_data)
    model.eval()
    batches = [batch[0] for batch in valid_data]
    with torch.no_grad():
        interests = torch.cat([model(b) for b in batches])
    unit = torch.nn.functional.normalize(interests, dim=-1)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = torch.stack([(unit[:, a] * unit[:, b]).sum(-1) for a, b in pairs]).mean()
    assert found["interest_cosine"] == pytest.approx(expected.item(), abs=1e-5)
    assert sum(found["routing_share"]) == pytest.approx(1.0)
    assert found["routing_share"] == sorted(found["routing_share"], reverse=True)
    assert 0.0 <= found["routing_overlap"] <= 1.0
    routing = torch.cat([model.interests_and_routing(b)[1] for b in batches])  # U x T x K
    real = torch.cat([b[model.ITEM_SEQ] != 0 for b in batches]).float()
    favoured = model.routing_logits.eval_logits.argmax(-1)  # T: each position's favourite
    follows = ((routing.argmax(-1) == favoured).float() * real).sum(1) / real.sum(1).clamp(min=1)
    assert found["routing_by_position"] == pytest.approx(follows.mean().item(), abs=1e-6)
    assert interest_diagnostics(build(tiny_data, "YoutubeDNN")[3], valid_data) is None  # K = 1


def test_routing_regularization_adds_lambda_times_the_overlap(tiny_data):
    from recbole_umi.towers.layers import routing_overlap

    _, train_data, _, model = build(tiny_data, "MIND", routing_regularization=0.5)
    batch = first_batch(train_data)

    def loss(weight):
        model.routing_regularization = weight
        torch.manual_seed(1)  # the same negatives and routing draws
        return model.calculate_loss(batch)

    torch.manual_seed(1)
    _, routing = model.interests_and_routing(batch)
    assert (loss(0.5) - loss(0.0)).item() == pytest.approx(0.5 * routing_overlap(routing).item(), rel=1e-4)


def test_routing_regularization_lowers_the_overlap(tiny_data):
    """Measured: UMI's overlap after 30 steps is 0.73 without the penalty, 0.22 with 5.0."""
    from recbole_umi.towers.layers import routing_overlap

    def trained_overlap(weight):
        torch.manual_seed(0)
        _, train_data, _, model = build(tiny_data, "UMI", routing_regularization=weight)
        batch = first_batch(train_data)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(30):
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
        model.eval()
        return routing_overlap(model.interests_and_routing(batch)[1]).item()

    assert trained_overlap(5.0) < 0.5 * trained_overlap(0.0)


def test_routing_regularization_needs_routing(tiny_data):
    from recbole_umi.model import ModelConfigError

    with pytest.raises(ModelConfigError, match="'routing_regularization' = 0.1: must be 0: YoutubeDNN routes no items"):
        build(tiny_data, "YoutubeDNN", routing_regularization=0.1)


def test_sasrec_matching_under_full_softmax_is_recboles_sasrec_but_for_the_padding_item(tiny_data):
    # The objectives table reads SASRec's CE runs as SASRec under full softmax: the same
    # encoder, item table, scores and loss, except that RecBole's CE also counts the padding
    # item 0 as a candidate (its row keeps its random start, padding_idx: a small logit), which
    # the plugin's full softmax leaves out.
    import torch.nn.functional as F

    no_dropout = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}
    _, train_data, _, ours = build(tiny_data, "SASRecMatching", loss_type="full_softmax", **no_dropout)
    _, _, _, recbole = build(tiny_data, "SASRec", hidden_size=8, train_neg_sample_args=None, **no_dropout)
    assert recbole.loss_type == "CE" and recbole.item_embedding.weight[0].abs().sum() > 0
    weights = {name.removeprefix("encoder."): value for name, value in ours.state_dict().items()
               if name.startswith("encoder.")}
    assert set(weights) == set(recbole.state_dict())  # every weight of RecBole's SASRec, nothing else
    recbole.load_state_dict(weights)
    batch = first_batch(train_data)
    ours.eval(), recbole.eval()
    with torch.no_grad():
        scores = recbole.full_sort_predict(batch)  # B x n_items, the padding item's column included
        assert torch.allclose(ours.full_sort_predict(batch), scores, atol=1e-6)
        assert torch.equal(scores[:, 0], torch.zeros(len(batch)))  # SASRecMatching's padding row is zero
        positives = batch[ours.POS_ITEM_ID]
        assert recbole.calculate_loss(batch) == pytest.approx(F.cross_entropy(scores, positives).item(), abs=1e-6)
        without_padding = F.cross_entropy(scores[:, 1:], positives - 1).item()
        assert ours.calculate_loss(batch) == pytest.approx(without_padding, abs=1e-6)
