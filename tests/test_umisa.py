"""UMISA's tower against its equations computed by hand from its own weights, against
SASRec's encoder (its recent interest), and for users without history."""

from __future__ import annotations

import pytest
import torch

from recbole_umi.settings import SettingsError
from recbole_umi.towers import DataSchema, ProfileField, SASRecTower, UMISATower
from recbole_umi.towers.settings import SASRecSettings, UMISASettings

D, T, N_ITEMS = 8, 5, 20
ENCODER = dict(n_layers=2, n_heads=2, inner_size=16, hidden_dropout_prob=0.2, attn_dropout_prob=0.2,
               hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.02)
SCHEMA = DataSchema(n_items=N_ITEMS, max_history_length=T,
                    profile=(ProfileField("gender", "token", 3, seen=(False, True, True)),
                             ProfileField("occ", "token", 4, seen=(False, True, True, True))))
# four users: a full history, a short one, one item, none
BATCH = {
    "item_id_list": torch.tensor([[3, 7, 1, 9, 4], [5, 2, 0, 0, 0], [11, 0, 0, 0, 0], [0, 0, 0, 0, 0]]),
    "item_length": torch.tensor([5, 2, 1, 0]),
    "gender": torch.tensor([1, 2, 1, 2]),
    "occ": torch.tensor([3, 1, 2, 3]),
}


def tower(**overrides) -> UMISATower:
    settings = dict(embedding_size=D, n_interests=3, profile_embedding_size=4, attention_hidden_size=6,
                    uganet_hidden_size=5, refine_hidden_size=7, profile_steering="queries", use_ir=True,
                    recent_interest=True, refine_interests=True, **ENCODER)
    torch.manual_seed(0)
    return UMISATower(UMISASettings(**{**settings, **overrides}), SCHEMA).eval()


def trained_looking(model: UMISATower) -> UMISATower:
    """``model`` with values where Xavier's initialisation starts at zero (the biases), and a
    refinement that adds more than its initial draw, so that a test sees every term."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") and not name.startswith("encoder"):
                parameter.normal_()
        if model.refinement is not None:
            model.refinement[2].weight.normal_()
    return model


def mlp(layers, x):
    """The tower's MLP (Linear, ReLU, Linear[, Sigmoid]) by hand."""
    hidden = torch.relu(x @ layers[0].weight.T + layers[0].bias)
    out = hidden @ layers[2].weight.T + layers[2].bias
    return torch.sigmoid(out) if len(layers) == 4 else out


def by_hand(model: UMISATower, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The module docstring's equations, one user at a time."""
    states = model.encoder.states(batch["item_id_list"])
    per_field = (torch.stack([table(batch[name]) for table, name in zip(model.profile.tables, ("gender", "occ"))],
                             dim=1) if model.profile is not None else torch.zeros(len(batch["item_length"]), 0, 0))
    interests, weights = [], []
    for b in range(len(batch["item_length"])):
        n = int(batch["item_length"][b])
        h, e_u = states[b, :n], per_field[b].flatten()
        vectors, columns = [], []
        if model.recent_interest:
            vectors.append(h[-1] if n else torch.zeros(D))
            columns.append(torch.eye(T)[n - 1] if n else torch.zeros(T))
        if model.extractor is not None:
            first, _, second = model.extractor.attention
            pooled, gate = h, torch.ones(n, 1)
            if model.profile_steering == "gate":
                gate = mlp(model.uganet, torch.cat([h, e_u.expand(n, -1)], dim=1))  # n x 1
                pooled = h * gate
            hidden = pooled @ first.weight.T + first.bias
            if model.profile_steering == "queries":
                hidden = hidden + model.extractor.context.weight @ e_u
            attention = torch.softmax(second(torch.tanh(hidden)), dim=0)  # n x K'
            for k in range(attention.size(1)):
                vectors.append(attention[:, k] @ pooled if n else torch.zeros(D))
                columns.append(torch.cat([attention[:, k] * gate[:, 0], torch.zeros(T - n)]) if n else torch.zeros(T))
        user = []
        for v in vectors:
            if not model.refine_interests:
                user.append(v)
                continue
            if model.use_ir:  # Eq 7-9
                d_k = mlp(model.field_relevance, torch.cat([e_u, v]))
                profile = (d_k.unsqueeze(1) * per_field[b]).flatten()
            else:
                profile = e_u
            user.append(v + mlp(model.refinement, torch.cat([profile, v])))
        interests.append(torch.stack(user))
        weights.append(torch.stack(columns, dim=1))
    return torch.stack(interests), torch.stack(weights)


@pytest.mark.parametrize("steering", ["queries", "gate", "none"])
@pytest.mark.parametrize("recent", [True, False])
@pytest.mark.parametrize("use_ir, refine", [(True, True), (False, True), (True, False)])
def test_umisa_computes_its_equations(steering, recent, use_ir, refine):
    model = trained_looking(tower(profile_steering=steering, recent_interest=recent, use_ir=use_ir,
                                  refine_interests=refine))
    assert (model.profile is None) == (steering == "none" and not refine)
    assert model.answers_without_history == refine  # with no history only the refinement gives interests
    with torch.no_grad():
        interests, routing = model.interests_and_routing(BATCH)
        expected_interests, expected_routing = by_hand(model, BATCH)
    assert interests.shape == (4, 3, D) and routing.shape == (4, T, 3)
    torch.testing.assert_close(interests, expected_interests, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(routing, expected_routing, rtol=1e-5, atol=1e-6)


def test_the_recent_interest_alone_is_sasrecs_user_vector():
    """K = 1 with the refinement's output at zero: UMISA is SASRecMatching (same weights)."""
    model = tower(n_interests=1, profile_steering="none")
    assert model.extractor is None
    torch.manual_seed(1)
    sasrec = SASRecTower(SASRecSettings(embedding_size=D, n_interests=1, **ENCODER), SCHEMA).eval()
    model.load_state_dict({**model.state_dict(), **sasrec.state_dict()})
    with torch.no_grad():
        model.refinement[2].weight.zero_()
        model.refinement[2].bias.zero_()
        history = {key: value[:3] for key, value in BATCH.items()}  # SASRec reads no empty history
        # to float rounding: SASRec's tower computes its last layer at the last position only
        torch.testing.assert_close(model(history), sasrec(history), rtol=1e-6, atol=1e-7)


def test_without_steering_and_refinement_the_recent_interest_alone_is_sasrecmatching():
    """K = 1, no profile steering, no refinement: UMISA reads no profile and is SASRecMatching,
    weight for weight from one seed (no weights edited), its interests and every prefix's."""
    model = tower(n_interests=1, profile_steering="none", refine_interests=False)
    torch.manual_seed(0)
    sasrec = SASRecTower(SASRecSettings(embedding_size=D, n_interests=1, **ENCODER), SCHEMA).eval()
    assert model.profile is None and not model.uses_profile and UMISATower.uses_profile
    ours, theirs = model.state_dict(), sasrec.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)
    history = {key: value[:3] for key, value in BATCH.items()}  # SASRec reads no empty history
    with torch.no_grad():
        torch.testing.assert_close(model(history), sasrec(history), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(model.prefix_interests(history), sasrec.prefix_interests(history))
        other_profile = {**history, "gender": torch.tensor([2, 1, 2]), "occ": torch.tensor([1, 3, 1])}
        assert torch.equal(model(other_profile), model(history))


def test_without_refinement_the_interests_are_the_extracted_ones():
    """refine_interests False drops the refinement (and its field weights, whatever use_ir
    says); the profile still steers the heads where asked."""
    model = trained_looking(tower(refine_interests=False, use_ir=True))
    assert model.refinement is None and model.field_relevance is None and not model.use_ir
    assert model.profile is not None and model.extractor.context is not None
    with torch.no_grad():
        interests, _ = model.interests_and_routing(BATCH)
        assert torch.equal(interests[3], torch.zeros(3, D))  # no history, no refinement: nothing to answer with
        states = model.encoder.states(BATCH["item_id_list"])
        torch.testing.assert_close(interests[:, 0], torch.stack([states[0, 4], states[1, 1], states[2, 0],
                                                                 torch.zeros(D)]))


def test_the_profile_steers_the_extraction_only_where_asked():
    other_profile = {**BATCH, "gender": torch.tensor([2, 1, 2, 1]), "occ": torch.tensor([1, 3, 1, 2])}
    with torch.no_grad():
        for steering, steered in (("queries", True), ("gate", True), ("none", False)):
            model = trained_looking(tower(profile_steering=steering, recent_interest=False))
            moved = not torch.allclose(model.interests_and_routing(BATCH)[1][:2],
                                       model.interests_and_routing(other_profile)[1][:2])
            assert moved == steered, steering


def test_a_user_without_history_is_answered_by_the_profile_alone():
    model = trained_looking(tower())
    with torch.no_grad():
        before = model(BATCH)[3]
        model.item_embedding.weight.normal_()  # the history's items and the padding row change
        model.encoder.position_embedding.weight.normal_()
        assert torch.equal(model(BATCH)[3], before)
        torch.testing.assert_close(before, by_hand(model, BATCH)[0][3], rtol=1e-5, atol=1e-5)
        other_profile = {**BATCH, "gender": torch.tensor([2, 1, 2, 1]), "occ": torch.tensor([1, 3, 1, 2])}
        assert not torch.allclose(model(other_profile)[3], before)


def test_bad_steering_is_refused_with_the_choices():
    with pytest.raises(SettingsError, match="profile_steering.*queries"):
        tower(profile_steering="attention")
    with pytest.raises(SettingsError, match="profile_steering.*no head extracts"):  # K = 1: nothing to steer
        tower(n_interests=1, profile_steering="gate")
    # without the refinement use_ir has nothing to switch: UMISA-IR would be UMISA
    with pytest.raises(SettingsError, match="'use_ir' = False: must be True .* with refine_interests False"):
        tower(refine_interests=False, use_ir=False)


def test_one_seed_gives_one_item_table_and_encoder_in_every_variant():
    """The optional parts are drawn after the encoder and the item table."""
    item_tables = [tower(profile_steering=s, use_ir=ir).item_embedding.weight for s in ("queries", "gate", "none")
                   for ir in (True, False)]
    assert all(torch.equal(table, item_tables[0]) for table in item_tables)
    encoders = [tower(profile_steering=s).encoder.state_dict() for s in ("queries", "none")]
    assert all(torch.equal(encoders[0][key], encoders[1][key]) for key in encoders[0])


@pytest.mark.parametrize("steering", ["queries", "gate", "none"])
def test_the_interests_read_the_history_causally_and_in_order(steering):
    """by_hand takes its states from the tower's encoder; here the encoder itself: a later
    item leaves every earlier state as it was, a history cut after 2 items gives the
    interests of a user whose history is those 2 items, and the history's order matters."""
    model = trained_looking(tower(profile_steering=steering))
    history = BATCH["item_id_list"]
    changed = history.clone()
    changed[0, 3] = 15
    with torch.no_grad():
        before, after = model.encoder.states(history), model.encoder.states(changed)
        assert torch.equal(before[0, :3], after[0, :3]) and not torch.allclose(before[0, 3:], after[0, 3:])
        cut = {**BATCH, "item_id_list": history.clone(), "item_length": BATCH["item_length"].clone()}
        cut["item_id_list"][0, 2:], cut["item_length"][0] = 0, 2
        alone = {**BATCH, "item_id_list": history.clone(), "item_length": BATCH["item_length"].clone()}
        alone["item_id_list"][1], alone["item_length"][1] = torch.tensor([3, 7, 0, 0, 0]), 2
        alone["gender"], alone["occ"] = torch.tensor([1, 1, 1, 2]), torch.tensor([3, 3, 2, 3])  # user 0's profile
        assert torch.allclose(model(cut)[0], model(alone)[1], atol=1e-5)
        reversed_ = {**BATCH, "item_id_list": history.clone()}
        reversed_["item_id_list"][0] = history[0].flip(0)
        assert not torch.allclose(model(reversed_)[0], model(BATCH)[0])
