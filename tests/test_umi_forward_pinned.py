"""UMI's forward pass pinned equation by equation, against a reference written from the
paper's equations as docs/design.md states them (not from the code under test).

A tiny UMI (B = 2 users, T = 3, K = 2 interests, d = 2, C = 2 token profile fields of
d_f = 1, d_h = 2, refinement hidden 3, t = 3 routing iterations) gets hand-set weights and
the fixed evaluation draw of the initial routing logits; the reference below recomputes,
in float64 numpy:

- UGANet (Eq 2): a_i = sigmoid(W2 relu(W1 [e_i ; e_u] + b1) + b2), 0 for padding;
- dual-attention routing (Algorithm 1, Eq 3-6): u_ij = W_j e_i; t times
  c_ij = softmax_j(b_ij), z_j = sum_i a_i c_ij u_ij, v_j = squash(z_j), b_ij = u_ij . v_j
  (replaced); the routing reported is softmax_j of the last logits, 0 for padding;
- interest refinement (Eq 7-9): d_k = sigmoid(MLP([e_u ; v_k])) in R^C,
  e_u^k = concat_c(d_kc e_u^(c)), o_k = MLP([e_u^k ; v_k]);
- the harder-negatives logit (Eq 12) max_k o_k . e_j of every item, and the full-softmax
  cross-entropy over those logits without the padding item (Eq 14).

The model is built through RecBole's config and a dataset written here (the only part that
may change with the construction of a model); every assertion compares with the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole.data.interaction import Interaction  # noqa: E402

from tests.conftest import build  # noqa: E402

B, T, K, D, C, D_F, D_H, D_REFINE, ITERATIONS = 2, 3, 2, 2, 2, 1, 2, 3, 3
N_ITEMS = 6  # 5 items and the padding item 0


def write_data(folder):
    """20 users, 5 items, two token profile fields ``gender`` (F/M) and ``occ`` (a/b); every
    value is held by training users, so none is mapped to the unknown row."""
    target = folder / "pinned"
    target.mkdir(parents=True)
    inter = ["user_id:token\titem_id:token\ttimestamp:float"]
    users = ["user_id:token\tgender:token\tocc:token"]
    for user in range(1, 21):
        for position in range(4):
            inter.append(f"{user}\t{(user + position) % 5 + 1}\t{position}")
        users.append(f"{user}\t{'FM'[user % 2]}\t{'ab'[(user // 2) % 2]}")
    (target / "pinned.inter").write_text("\n".join(inter) + "\n")
    (target / "pinned.user").write_text("\n".join(users) + "\n")
    return folder


# -- hand-set weights (PyTorch's Linear layout: out x in) ---------------------------------------
ITEMS = np.array([[0.0, 0.0], [0.5, -0.2], [0.1, 0.4], [-0.3, 0.2], [0.6, 0.6], [-0.5, -0.1]])  # 6 x d
GENDER = np.array([[0.0], [0.7], [-0.4]])  # id 0 unknown, ids 1, 2
OCC = np.array([[0.0], [0.3], [0.9]])
UGANET_W1 = np.array([[0.4, -0.3, 0.8, 0.2], [-0.6, 0.5, 0.1, -0.7]])  # d_h x (d + d_u): [e_i ; e_u]
UGANET_B1 = np.array([0.1, 0.05])
UGANET_W2 = np.array([[0.9, -1.1]])
UGANET_B2 = np.array([0.2])
INTEREST_MAPS = np.array([[1.0, 0.5], [-0.4, 0.8], [0.3, -0.9], [0.7, 0.6]])  # K*d x d: rows of W_1 then W_2
INITIAL_LOGITS = np.array([[0.8, -0.5], [-1.2, 0.3], [0.4, 1.5]])  # T x K, the fixed evaluation draw
FIELD_W1 = np.array([[0.5, -0.8, 0.6, 0.3], [-0.2, 0.4, -0.9, 0.7]])  # d_h x (d_u + d): [e_u ; v_k]
FIELD_B1 = np.array([0.05, -0.1])
FIELD_W2 = np.array([[1.2, -0.7], [-0.5, 0.9]])  # C x d_h
FIELD_B2 = np.array([0.1, -0.2])
REFINE_W1 = np.array([[0.3, -0.6, 0.9, 0.2], [0.7, 0.4, -0.3, -0.8], [-0.5, 0.8, 0.6, 0.4]])  # 3 x (d_u + d)
REFINE_B1 = np.array([0.02, -0.05, 0.1])
REFINE_W2 = np.array([[0.6, -0.4, 0.9], [-0.7, 1.1, 0.3]])  # d x 3
REFINE_B2 = np.array([0.05, -0.03])

WEIGHTS = {
    "item_embedding.weight": ITEMS,
    "profile.tables.0.weight": GENDER,
    "profile.tables.1.weight": OCC,
    "uganet.0.weight": UGANET_W1, "uganet.0.bias": UGANET_B1,
    "uganet.2.weight": UGANET_W2, "uganet.2.bias": UGANET_B2,
    "interest_maps.weight": INTEREST_MAPS,
    "routing_logits.eval_logits": INITIAL_LOGITS,
    "field_relevance.0.weight": FIELD_W1, "field_relevance.0.bias": FIELD_B1,
    "field_relevance.2.weight": FIELD_W2, "field_relevance.2.bias": FIELD_B2,
    "refinement.0.weight": REFINE_W1, "refinement.0.bias": REFINE_B1,
    "refinement.2.weight": REFINE_W2, "refinement.2.bias": REFINE_B2,
}

# the batch: user 0 has two items and a padded position, user 1 three items
HISTORY = np.array([[1, 4, 0], [3, 1, 2]])
LENGTHS = np.array([2, 3])
GENDER_IDS = np.array([1, 2])
OCC_IDS = np.array([2, 1])
POSITIVES = np.array([2, 5])


# -- the reference, from the equations ----------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def squash(z):
    norm2 = float(z @ z)
    return norm2 / (1.0 + norm2) * z / np.sqrt(norm2)


def reference(b: int) -> dict:
    """Every intermediate of UMI for user ``b`` of the batch."""
    e_u = np.array([GENDER[GENDER_IDS[b], 0], OCC[OCC_IDS[b], 0]])  # concat of the C field embeddings
    per_field = [e_u[0:1], e_u[1:2]]
    items = HISTORY[b]
    real = items != 0
    # Eq 2: UGANet
    attention = np.zeros(T)
    for i in range(T):
        x = np.concatenate([ITEMS[items[i]], e_u])
        a = sigmoid(UGANET_W2 @ relu(UGANET_W1 @ x + UGANET_B1) + UGANET_B2)[0]
        attention[i] = a if real[i] else 0.0
    # Eq 3: u_ij = W_j e_i
    votes = np.zeros((T, K, D))
    for i in range(T):
        for j in range(K):
            votes[i, j] = INTEREST_MAPS[j * D:(j + 1) * D] @ ITEMS[items[i]]
    # Algorithm 1: t iterations, logits replaced by the agreement
    logits = INITIAL_LOGITS.copy()
    for _ in range(ITERATIONS):
        coupling = np.array([softmax(logits[i]) for i in range(T)])  # c_ij over the K interests
        z = [sum(attention[i] * coupling[i, j] * votes[i, j] for i in range(T) if real[i]) for j in range(K)]
        capsules = np.array([squash(z[j]) for j in range(K)])
        logits = np.array([[votes[i, j] @ capsules[j] for j in range(K)] for i in range(T)])
    routing = np.array([softmax(logits[i]) if real[i] else np.zeros(K) for i in range(T)])
    # Eq 7-9: interest refinement
    field_weights = np.zeros((K, C))
    interests = np.zeros((K, D))
    for k in range(K):
        x = np.concatenate([e_u, capsules[k]])
        field_weights[k] = sigmoid(FIELD_W2 @ relu(FIELD_W1 @ x + FIELD_B1) + FIELD_B2)
        weighted = np.concatenate([field_weights[k, c] * per_field[c] for c in range(C)])
        hidden = relu(REFINE_W1 @ np.concatenate([weighted, capsules[k]]) + REFINE_B1)
        interests[k] = REFINE_W2 @ hidden + REFINE_B2
    # Eq 1 / 12: each item's logit with its own best interest
    logits_hn = np.array([max(interests[k] @ ITEMS[j] for k in range(K)) for j in range(N_ITEMS)])
    return {"item_attention": attention, "capsules": capsules, "routing": routing,
            "field_weights": field_weights, "interests": interests, "scores": logits_hn}


def reference_full_softmax_loss() -> float:
    """Eq 14 over every item but the padding item, the HN logits of Eq 12."""
    losses = []
    for b in range(B):
        logits = reference(b)["scores"][1:]
        losses.append(np.log(np.exp(logits).sum()) - logits[POSITIVES[b] - 1])
    return float(np.mean(losses))


# -- the model under test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def umi(tmp_path_factory):
    """The UMI with the hand-set weights, in eval mode, and the batch as it takes it."""
    folder = tmp_path_factory.mktemp("pinned")
    data = write_data(folder / "data")
    settings = {"n_interests": K, "embedding_size": D, "profile_fields": ["gender", "occ"],
                "profile_embedding_size": D_F, "uganet_hidden_size": D_H, "refine_hidden_size": D_REFINE,
                "routing_iterations": ITERATIONS, "MAX_ITEM_LIST_LENGTH": T, "harder_negatives": True,
                "loss_type": "full_softmax", "eval_protocol": "user_split",
                "load_col": {"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "gender", "occ"]}}
    _, _, _, model = build(data, "UMI", dataset="pinned", **settings)
    state = model.state_dict()
    for key, value in WEIGHTS.items():
        assert state[key].shape == value.shape, key
        state[key] = torch.tensor(value, dtype=state[key].dtype)
    model.load_state_dict(state)
    model.eval()
    batch = Interaction({
        model.ITEM_SEQ: torch.tensor(HISTORY), model.ITEM_SEQ_LEN: torch.tensor(LENGTHS),
        "gender": torch.tensor(GENDER_IDS), "occ": torch.tensor(OCC_IDS), model.POS_ITEM_ID: torch.tensor(POSITIVES),
    })
    return model, batch


def model_parts(model, batch) -> dict:
    """What UMI computes for ``batch``: Eq 2's weights, the capsules v_k (the refinement
    MLP's last d inputs), the routing, Eq 7's field weights, the interests and every item's
    score."""
    captured = []
    hook = model.refinement.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0][..., -D:]))
    with torch.no_grad():
        explained = model.explain(batch)
        scores = model.full_sort_predict(batch)
    hook.remove()
    return {"item_attention": explained["item_attention"], "capsules": captured[0], "routing": explained["routing"],
            "field_weights": explained["field_weights"], "interests": explained["interests"], "scores": scores}


@pytest.mark.parametrize("part", ["item_attention", "capsules", "routing", "field_weights", "interests", "scores"])
def test_each_equation_matches_the_reference(umi, part):
    model, batch = umi
    got = model_parts(model, batch)[part].double().numpy()
    expected = np.stack([reference(b)[part] for b in range(B)])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_forward_returns_the_refined_interests(umi):
    model, batch = umi
    with torch.no_grad():
        interests = model(batch).double().numpy()
    np.testing.assert_allclose(interests, np.stack([reference(b)["interests"] for b in range(B)]), rtol=1e-5, atol=1e-6)


def test_predict_gives_the_harder_negatives_logit_of_the_row_item(umi):
    model, batch = umi
    rows = Interaction({**batch.interaction, model.ITEM_ID: torch.tensor([4, 1])})
    with torch.no_grad():
        got = model.predict(rows).double().numpy()
    np.testing.assert_allclose(got, [reference(0)["scores"][4], reference(1)["scores"][1]], rtol=1e-5, atol=1e-6)


def test_full_softmax_loss_with_harder_negatives(umi):
    model, batch = umi
    with torch.no_grad():
        loss = model.calculate_loss(batch).item()
    assert loss == pytest.approx(reference_full_softmax_loss(), rel=1e-5)


def test_the_reference_is_not_trivial():
    """The control: the users differ, the interests differ, UGANet's weights are not all
    equal, the routing moved away from the initial draw and the field weights differ by
    interest, so that a wrong step would show."""
    first, second = reference(0), reference(1)
    assert not np.allclose(first["interests"], second["interests"], atol=1e-3)
    assert not np.allclose(first["interests"][0], first["interests"][1], atol=1e-3)
    assert np.ptp(second["item_attention"]) > 1e-3
    initial = np.array([softmax(row) for row in INITIAL_LOGITS])
    assert not np.allclose(second["routing"], initial, atol=1e-2)
    assert not np.allclose(second["field_weights"][0], second["field_weights"][1], atol=1e-3)
