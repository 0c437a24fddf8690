"""The towers on their own, without RecBole: UMI's tower against the pinned reference, and
SASRec's encoder against RecBole's SASRec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recbole_umi.towers import DataSchema, MINDTower, ProfileField, UMITower, profile_field
from recbole_umi.towers import mind as mind_module, umi as umi_module
from recbole_umi.towers.settings import MINDSettings, SASRecSettings, UMISettings
from recbole_umi.towers.transformer import CausalTransformerEncoder, last_state
from tests import test_umi_forward_pinned as pinned


def pinned_tower() -> UMITower:
    """The pinned test's UMI, built from its settings and a schema alone (no dataset)."""
    schema = DataSchema(
        n_items=pinned.N_ITEMS, max_history_length=pinned.T,
        profile=(ProfileField("gender", "token", 3, seen=(False, True, True)),
                 ProfileField("occ", "token", 3, seen=(False, True, True))),
    )
    settings = UMISettings(embedding_size=pinned.D, n_interests=pinned.K, profile_embedding_size=pinned.D_F,
                           uganet_hidden_size=pinned.D_H, refine_hidden_size=pinned.D_REFINE,
                           routing_iterations=pinned.ITERATIONS, routing_init_std=1.0, use_dar=True, use_ir=True)
    tower = UMITower(settings, schema)
    state = tower.state_dict()
    for key, value in pinned.WEIGHTS.items():
        state[key] = torch.tensor(value, dtype=state[key].dtype)
    tower.load_state_dict(state)
    return tower.eval()


def test_umi_tower_computes_the_pinned_reference():
    tower = pinned_tower()
    batch = {"item_id_list": torch.tensor(pinned.HISTORY), "item_length": torch.tensor(pinned.LENGTHS),
             "gender": torch.tensor(pinned.GENDER_IDS), "occ": torch.tensor(pinned.OCC_IDS)}
    with torch.no_grad():
        explained = tower.explain(batch)
        scores = tower.score_all_items(tower(batch))
    got = {**explained, "scores": scores}
    for part in ("item_attention", "routing", "field_weights", "interests", "scores"):
        expected = np.stack([pinned.reference(b)[part] for b in range(pinned.B)])
        np.testing.assert_allclose(got[part].double().numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=part)


def pinned_batch(copies: int = 1) -> dict:
    """The pinned test's batch, its users repeated ``copies`` times."""
    fields = {"item_id_list": pinned.HISTORY, "item_length": pinned.LENGTHS, "gender": pinned.GENDER_IDS,
              "occ": pinned.OCC_IDS}
    return {name: torch.tensor(np.concatenate([value] * copies)) for name, value in fields.items()}


def test_umi_computes_the_pinned_reference_through_the_mapped_item_table():
    """With more history positions (4 x 2 users x T = 3) than the table has rows (6), UGANet's
    first layer maps the item table before the lookup (``ops.mapped_lookup``): still the
    hand-computed reference."""
    tower = pinned_tower()
    copies = 4
    assert tower.item_embedding.num_embeddings < copies * pinned.B * pinned.T
    with torch.no_grad():
        explained = tower.explain(pinned_batch(copies))
    for part in ("item_attention", "interests"):
        expected = np.stack([pinned.reference(b)[part] for b in range(pinned.B)] * copies)
        np.testing.assert_allclose(explained[part].double().numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=part)


def mind_tower() -> MINDTower:
    schema = DataSchema(n_items=pinned.N_ITEMS, max_history_length=pinned.T,
                        profile=(ProfileField("gender", "token", 3, seen=(False, True, True)),
                                 ProfileField("occ", "token", 3, seen=(False, True, True))))
    settings = MINDSettings(embedding_size=4, n_interests=2, profile_embedding_size=2, routing_iterations=3,
                            routing_init_std=1.0, mlp_hidden_size=5, readout_power=float("inf"),
                            dynamic_interests=False)
    torch.manual_seed(0)
    return MINDTower(settings, schema).eval()


@pytest.mark.parametrize("build, module", [(pinned_tower, umi_module), (mind_tower, mind_module)],
                         ids=["UMI", "MIND"])
def test_the_mapped_item_table_gives_the_towers_values_and_gradients(build, module, monkeypatch):
    """UMI's UGANet and MIND's shared map over the item table (``ops.mapped_lookup``, 24
    history positions against 6 rows) against the map of the looked-up rows: the same
    interests and the same gradients of every parameter, none for the padding row."""
    batch = pinned_batch(copies=4)
    results = []
    for mapped in (True, False):
        if not mapped:
            monkeypatch.setattr(module, "mapped_lookup", lambda table, ids, weight: F.linear(table(ids), weight))
        tower = build()
        interests = tower(batch)
        interests.square().sum().backward()
        results.append((interests.detach(), {n: p.grad.clone() for n, p in tower.named_parameters()
                                             if p.grad is not None}))
    (interests, grads), (expected_interests, expected_grads) = results
    torch.testing.assert_close(interests, expected_interests)
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], msg=name)
    assert (grads["item_embedding.weight"][0] == 0).all()


def test_profile_field_from_the_users_values():
    values = torch.tensor([0, 2, 2, 1, 3])  # user ids 0..4; user 4 (value 3) is held out
    field = profile_field("g", "token", values, torch.tensor([1, 2, 3]), size=4)
    assert field.seen == (False, True, True, False)
    ages = torch.tensor([0.0, 20.0, 30.0, 40.0, 99.0])
    bucketed = profile_field("age", "float", ages, torch.tensor([1, 2, 3]), n_float_buckets=2)
    assert bucketed.bucket_edges == (30.0,) and bucketed.size == 3
    with pytest.raises(ValueError, match="seen flag per id"):
        ProfileField("g", "token", 4, seen=(False, True))


def test_sasrec_encoder_is_recboles_sasrec_from_the_same_seed(tiny_data):
    """Built from one seed, the plain-torch encoder has RecBole's SASRec's parameters (names,
    shapes and values) and gives its output (its states at the last position bit for bit, its
    forward, the last layer at the last position only, to float rounding); in training mode too
    where RecBole's model has the plugin's dropout (``fast_cpu_modules``: the same draws, and
    compile_step's forward the encoder's bit for bit), and not with its own."""
    from recbole.model.sequential_recommender.sasrec import SASRec
    from recbole.utils import init_seed

    from recbole_umi.model.base import fast_cpu_modules
    from recbole_umi.registry import get_model
    from tests.conftest import build

    config, train_data, _, _ = build(tiny_data, "SASRec", hidden_size=8, train_neg_sample_args=None)
    settings = SASRecSettings(embedding_size=8, n_interests=1, n_layers=2, n_heads=2, inner_size=16,
                              hidden_dropout_prob=0.3, attn_dropout_prob=0.3, hidden_act="gelu",
                              layer_norm_eps=1e-12, initializer_range=0.02)
    for key in ("n_layers", "n_heads", "inner_size", "hidden_dropout_prob", "attn_dropout_prob"):
        config[key] = getattr(settings, key)
    init_seed(7, True)
    recbole = get_model("SASRec")(config, train_data.dataset)
    init_seed(7, True)
    ours = CausalTransformerEncoder(settings, recbole.n_items, config["MAX_ITEM_LIST_LENGTH"])
    theirs = {key: value for key, value in recbole.state_dict().items()}
    assert set(ours.state_dict()) == set(theirs)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs[key]), key
    batch = next(iter(train_data))
    sequence, length = batch["item_id_list"], batch["item_length"]
    outputs = {}
    for train in (False, True):
        ours.train(train), recbole.train(train)
        torch.manual_seed(3)
        outputs[train] = expected = recbole(sequence, length)
        torch.manual_seed(3)
        # in training the plugin's dropout draws other masks than RecBole's nn.Dropout
        assert torch.equal(last_state(ours.states(sequence), length), expected) == (not train)
    # the encoder's forward computes the last layer at the last position only: the same values
    torch.testing.assert_close(ours.eval()(sequence, length), outputs[False], rtol=1e-5, atol=1e-6)
    # with the plugin's dropout (what compile_step gives RecBole's models) the same draws: RecBole's
    # forward against the encoder's states, compile_step's forward (the last layer at the last
    # position) against the encoder's forward;
    # 1 + 3 n dropouts, 6 n linear maps, n GELUs, the causal attention mask and the forward
    assert fast_cpu_modules(recbole) == 1 + 3 * settings.n_layers + 6 * settings.n_layers + settings.n_layers + 2
    ours.train(), recbole.train()
    torch.manual_seed(3)
    expected = SASRec.forward(recbole, sequence, length)
    torch.manual_seed(3)
    assert torch.equal(last_state(ours.states(sequence), length), expected) and not torch.equal(expected, outputs[True])
    torch.manual_seed(3)
    expected = recbole(sequence, length)
    torch.manual_seed(3)
    assert torch.equal(ours(sequence, length), expected)
    recbole.eval()
    assert torch.equal(SASRec.forward(recbole, sequence, length), outputs[False])
    torch.testing.assert_close(recbole(sequence, length), outputs[False], rtol=1e-5, atol=1e-6)
