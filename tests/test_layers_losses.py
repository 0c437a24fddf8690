"""Routing and losses against small examples computed by hand."""

import math

import pytest
import torch

from recbole_umi.towers import losses as losses_module
from recbole_umi.towers.layers import MLP, SelfAttentiveExtractor, dynamic_routing, mask_logits, routing_overlap, squash
from recbole_umi.towers.losses import (
    BROADCAST_MAX_CANDIDATES,
    BestInterestScores,
    MultiInterestLoss,
    NegativeSampler,
    candidate_scores,
    readout_logits,
    scores_through_table,
)
from recbole_umi.settings import SettingsError


def test_squash_scales_length_and_keeps_direction():
    # |z|^2 = 25 -> length 25/26, direction (0.6, 0.8)
    out = squash(torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(out, torch.tensor([[25 / 26 * 0.6, 25 / 26 * 0.8]]), atol=1e-6)
    assert torch.allclose(squash(torch.zeros(1, 2)), torch.zeros(1, 2))


# One user, two items, two interests, d = 2.
VOTES = torch.tensor([[[[2.0, 0.0], [0.0, 2.0]], [[0.0, 4.0], [4.0, 0.0]]]])  # B x T x K x d
INITIAL = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # c = [.5 .5], [.75 .25]
ITEM_WEIGHTS = torch.tensor([[1.0, 0.5]])


def expected_capsules_after_one_iteration():
    # z_0 = 1 * .5 * (2, 0) + .5 * .75 * (0, 4) = (1, 1.5); z_1 = .5 * (0, 2) + .5 * .25 * (4, 0) = (.5, 1)
    z = torch.tensor([[1.0, 1.5], [0.5, 1.0]])
    norm2 = (z * z).sum(-1, keepdim=True)  # 3.25, 1.25
    return norm2 / (1 + norm2) * z / norm2.sqrt()


def test_one_routing_iteration_with_known_weights():
    mask = torch.ones(1, 2, dtype=torch.bool)
    capsules, _ = dynamic_routing(VOTES, mask, INITIAL, iterations=1, item_weights=ITEM_WEIGHTS)
    assert torch.allclose(capsules[0], expected_capsules_after_one_iteration(), atol=1e-6)


def test_padded_item_gets_no_routing_weight():
    mask = torch.tensor([[True, False]])
    capsules, _ = dynamic_routing(VOTES, mask, INITIAL, iterations=1, item_weights=ITEM_WEIGHTS)
    # only item 0 with c = (.5, .5): z_0 = (1, 0), z_1 = (0, 1) -> squash length 1/2
    assert torch.allclose(capsules[0], torch.tensor([[0.5, 0.0], [0.0, 0.5]]), atol=1e-6)


@pytest.mark.parametrize("accumulate", [False, True])
def test_second_iteration_replaces_or_accumulates_logits(accumulate):
    mask = torch.ones(1, 2, dtype=torch.bool)
    v = expected_capsules_after_one_iteration()
    agreement = torch.einsum("tkd,kd->tk", VOTES[0], v)
    logits = INITIAL[0] + agreement if accumulate else agreement
    c = torch.softmax(logits, dim=-1) * ITEM_WEIGHTS[0].unsqueeze(-1)
    expected = squash(torch.einsum("tk,tkd->kd", c, VOTES[0]))
    capsules, _ = dynamic_routing(VOTES, mask, INITIAL, iterations=2, item_weights=ITEM_WEIGHTS, accumulate=accumulate)
    assert torch.allclose(capsules[0], expected, atol=1e-6)


def test_only_last_routing_iteration_carries_gradient():
    votes = VOTES.clone().requires_grad_(True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    dynamic_routing(votes, mask, INITIAL, iterations=3)[0].sum().backward()
    grad_full = votes.grad.clone()
    votes.grad = None
    # the gradient equals that of one iteration started from the (detached) logits of iteration 3
    with torch.no_grad():
        v1 = dynamic_routing(votes, mask, INITIAL, iterations=1)[0]
        b2 = torch.einsum("btkd,bkd->btk", votes, v1)
        v2 = squash(torch.einsum("btk,btkd->bkd", torch.softmax(b2, -1), votes))
        b3 = torch.einsum("btkd,bkd->btk", votes, v2)
    dynamic_routing(votes, mask, b3, iterations=1)[0].sum().backward()
    assert torch.allclose(grad_full, votes.grad, atol=1e-6)


def test_self_attention_ignores_padding():
    extractor = SelfAttentiveExtractor(embedding_size=2, hidden_size=3, n_interests=2)
    history = torch.tensor([[[1.0, 2.0], [5.0, -1.0]]])
    out, attention = extractor(history, torch.tensor([[True, False]]))
    assert torch.equal(attention[0, 1], torch.zeros(2))  # the padded item gets no attention
    assert torch.allclose(out, history[:, :1].expand(1, 2, 2))


# Two interests, three candidates (positive first): S = O E^T = [[2, 0, 1], [1, 3, 1]].
INTERESTS = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
ITEMS = torch.tensor([[0.0, 0.0], [2.0, 1.0], [0.0, 3.0], [1.0, 1.0]])  # id 0 = padding


def item_vectors(ids=None):
    """A model's ``item_embeddings`` over the table ``ITEMS``."""
    return ITEMS if ids is None else ITEMS[ids]


class FixedSampler(NegativeSampler):
    def __init__(self, negatives):
        super().__init__(n_items=4)
        self.negatives = torch.tensor(negatives)

    def forward(self, batch_size, n_negatives, device=None, after=None):
        return self.negatives.expand(batch_size, -1)


def test_hn_and_non_hn_logits():
    scores = torch.einsum("bkd,cd->bkc", INTERESTS, ITEMS[1:])
    first = torch.zeros(1, dtype=torch.long)
    # without HN the positive picks interest 0 (2 > 1) and scores every candidate with it
    assert readout_logits(scores, first, harder_negatives=False).tolist() == [[2.0, 0.0, 1.0]]
    # with HN every candidate picks its own best interest
    assert readout_logits(scores, first, harder_negatives=True).tolist() == [[2.0, 3.0, 1.0]]
    # label-aware attention with power 1: weights softmax(2, 1)
    w = torch.softmax(torch.tensor([2.0, 1.0]), 0)
    mixed = readout_logits(scores, first, harder_negatives=False, readout_power=1.0)
    assert torch.allclose(mixed, (w[0] * torch.tensor([2.0, 0, 1]) + w[1] * torch.tensor([1.0, 3, 1])).unsqueeze(0))


@pytest.mark.parametrize(
    "harder_negatives, expected",
    [
        (False, math.log(1 + math.exp(-2) + math.exp(-1))),  # -log e^2 / (e^2 + e^0 + e^1) = 0.407606
        (True, math.log(1 + math.exp(1) + math.exp(-1))),  # -log e^2 / (e^2 + e^3 + e^1) = 1.407606
    ],
)
def test_sampled_softmax_loss_value(harder_negatives, expected):
    loss = MultiInterestLoss("sampled_softmax", harder_negatives, 2, FixedSampler([2, 3]))
    value = loss(INTERESTS, torch.tensor([1]), item_vectors)
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_temperature_divides_logits():
    loss = MultiInterestLoss("sampled_softmax", True, 2, FixedSampler([2, 3]), temperature=2.0)
    expected = math.log(1 + math.exp(0.5) + math.exp(-0.5))  # logits (1, 1.5, .5)
    assert loss(INTERESTS, torch.tensor([1]), item_vectors).item() == pytest.approx(expected, abs=1e-6)


def test_accidental_hit_is_left_out():
    loss = MultiInterestLoss("sampled_softmax", True, 2, FixedSampler([1, 3]))
    expected = math.log(1 + math.exp(-1))  # only the negative item 3 (logit 1) remains
    assert loss(INTERESTS, torch.tensor([1]), item_vectors).item() == pytest.approx(expected, abs=1e-6)


def test_full_softmax_skips_padding_item():
    loss = MultiInterestLoss("full_softmax", True, 1, NegativeSampler(4))
    expected = math.log(1 + math.exp(1) + math.exp(-1))  # all items 1..3, not item 0
    assert loss(INTERESTS, torch.tensor([1]), item_vectors).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("harder_negatives, readout_power", [(True, math.inf), (False, math.inf), (False, 2.0)])
@pytest.mark.parametrize("compiling, dense_cap, blocked", [
    (False, 2 ** 25, True),  # eager: HN's best interests block by block (BestInterestScores)
    (True, 2 ** 25, False),  # compiled: from the whole score tensor, within the cap
    (True, 6 * 3 * 9 - 1, True),  # compiled beyond the cap: blocks again
])
def test_full_softmax_equals_the_softmax_over_the_whole_score_tensor(harder_negatives, readout_power, compiling,
                                                                     dense_cap, blocked, monkeypatch):
    """The loss scores every item through shared_readout, without the B x K x n_items
    tensor (compiled with HN, with it up to DENSE_BEST_MAX_SCORES): the same value and
    gradients as readout_logits over that tensor."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
    monkeypatch.setattr(losses_module, "DENSE_BEST_MAX_SCORES", dense_cap)
    calls = []
    real_apply = BestInterestScores.apply
    monkeypatch.setattr(BestInterestScores, "apply", lambda *args: calls.append(1) or real_apply(*args))
    generator = torch.Generator().manual_seed(7)
    interests = torch.randn(6, 3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    table = torch.randn(9, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    positives = torch.tensor([1, 8, 3, 3, 5, 2])
    loss = MultiInterestLoss("full_softmax", harder_negatives, 1, NegativeSampler(9), temperature=0.5,
                             readout_power=readout_power)
    value = loss(interests, positives, lambda ids=None: table if ids is None else table[ids])
    got = torch.autograd.grad(value, (interests, table))

    scores = torch.einsum("bkd,nd->bkn", interests, table)
    logits = readout_logits(scores, positives, harder_negatives, readout_power) / 0.5
    expected = torch.nn.functional.cross_entropy(logits[:, 1:], positives - 1)  # item 0 (padding) left out
    assert value.item() == pytest.approx(expected.item(), abs=1e-12)
    for mine, reference in zip(got, torch.autograd.grad(expected, (interests, table))):
        assert torch.allclose(mine, reference, atol=1e-12)
    assert got[1][0].abs().sum() == 0  # the padding item gets no gradient
    assert bool(calls) == (harder_negatives and blocked)


def test_popularity_sampler_follows_counts():
    torch.manual_seed(0)
    sampler = NegativeSampler(4, "popularity", torch.tensor([0.0, 1.0, 0.0, 3.0]))
    draws = sampler(1000, 4)
    assert set(draws.unique().tolist()) == {1, 3}
    assert 0.70 < (draws == 3).float().mean().item() < 0.80


def test_uniform_sampler_never_draws_padding():
    draws = NegativeSampler(4)(500, 4)
    assert draws.min().item() >= 1 and draws.max().item() <= 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss_type": "BPR"}, "loss_type"),
        ({"n_negatives": 3}, "n_negatives"),  # 3 real items: at most 2 negatives besides the positive
        ({"n_negatives": 0}, "n_negatives"),
        ({"temperature": 0.0}, "softmax_temperature"),
    ],
)
def test_invalid_loss_settings_fail_clearly(kwargs, message):
    settings = {"loss_type": "sampled_softmax", "harder_negatives": True, "n_negatives": 1, "sampler": NegativeSampler(4)}
    with pytest.raises(SettingsError, match=message):
        MultiInterestLoss(**{**settings, **kwargs})


def test_unknown_sampler_fails_clearly():
    with pytest.raises(SettingsError, match="negative_sampler"):
        NegativeSampler(4, "zipf")


def test_shared_negatives_give_the_same_loss_as_the_same_negatives_per_row():
    interests = torch.cat([INTERESTS, INTERESTS.flip(1)])  # two users
    positives = torch.tensor([1, 2])
    shared = MultiInterestLoss("sampled_softmax", True, 1, FixedSampler([3]), shared_negatives=True)
    per_row = MultiInterestLoss("sampled_softmax", True, 1, FixedSampler([3]))
    assert shared(interests, positives, item_vectors).item() == pytest.approx(per_row(interests, positives, item_vectors).item())


def test_logq_correction_under_popularity_sampling():
    sampler = NegativeSampler(4, "popularity", torch.tensor([0.0, 1.0, 1.0, 2.0]))  # q = .25, .25, .5
    sampler.forward = lambda batch_size, n, device=None, after=None: torch.tensor([[2, 3]]).expand(batch_size, -1)
    loss = MultiInterestLoss("sampled_softmax", True, 2, sampler)
    # HN logits (2, 3, 1) minus log(2 q) = (log .5, log .5, log 1)
    corrected = [2 - math.log(0.5), 3 - math.log(0.5), 1.0]
    expected = -corrected[0] + math.log(sum(math.exp(x) for x in corrected))
    assert loss(INTERESTS, torch.tensor([1]), item_vectors).item() == pytest.approx(expected, abs=1e-5)
    uncorrected = MultiInterestLoss("sampled_softmax", True, 2, sampler, logq_correction=False)
    assert uncorrected(INTERESTS, torch.tensor([1]), item_vectors).item() == pytest.approx(math.log(1 + math.e + math.exp(-1)), abs=1e-6)
    # in float64 the correction is float64 too (it was rounded to float32, about 1e-8 off), per row and shared
    for shared in (False, True):
        loss = MultiInterestLoss("sampled_softmax", True, 2, sampler, shared_negatives=shared)
        value = loss(INTERESTS.double(), torch.tensor([1]), lambda ids=None: item_vectors(ids).double())
        assert value.dtype == torch.float64 and value.item() == pytest.approx(expected, abs=1e-13)


@pytest.mark.parametrize("compiling", [False, True])
@pytest.mark.parametrize("n_interests", [1, 3])
@pytest.mark.parametrize("n_candidates", [1, 6, BROADCAST_MAX_CANDIDATES, BROADCAST_MAX_CANDIDATES + 1, 300])
def test_candidate_scores_are_dot_products_on_both_paths(n_candidates, n_interests, compiling, monkeypatch):
    """The batched matmul, and the broadcast product (compiled, or eager for one interest up to
    BROADCAST_MAX_CANDIDATES), give the dot products."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
    generator = torch.Generator().manual_seed(n_candidates)
    interests = torch.randn(4, n_interests, 5, generator=generator, dtype=torch.float64)
    candidates = torch.randn(4, n_candidates, 5, generator=generator, dtype=torch.float64)
    scores = candidate_scores(interests, candidates)
    assert scores.shape == (4, n_interests, n_candidates)
    b, k, c = 2, n_interests - 1, n_candidates - 1
    assert scores[b, k, c].item() == pytest.approx(float(interests[b, k] @ candidates[b, c]), abs=1e-12)
    assert torch.allclose(scores, torch.einsum("bkd,bcd->bkc", interests, candidates))


@pytest.mark.parametrize(
    "loss_type, shared, ratio, asked",
    [
        ("sampled_softmax", False, math.inf, [(1, 3)]),  # one call: the B x (1 + n) candidate ids
        # through the table (a ratio of 0: always): every item's, the positives' among them
        ("sampled_softmax", False, 0, [None]),
        ("sampled_softmax", True, 0, [(3,)]),  # one call: the positives and the shared negatives
        ("full_softmax", False, 0, [None]),  # every item
    ],
)
def test_loss_asks_only_for_the_candidates_vectors(loss_type, shared, ratio, asked, monkeypatch):
    monkeypatch.setattr(losses_module, "TABLE_SCORES_RATIO", ratio)
    calls = []

    def recording_item_vectors(ids=None):
        calls.append(None if ids is None else tuple(ids.shape))
        return item_vectors(ids)

    loss = MultiInterestLoss(loss_type, True, 2, FixedSampler([2, 3]), shared_negatives=shared)
    value = loss(INTERESTS, torch.tensor([1]), recording_item_vectors)
    assert calls == asked
    # the value is the one computed from the whole table (hand-computed above: 1.407606)
    assert value.item() == pytest.approx(math.log(1 + math.exp(1) + math.exp(-1)), abs=1e-6)


def test_masked_logits_get_no_weight_and_no_nan():
    logits = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    keep = torch.tensor([[True, False, True], [False, False, False]])
    weights = torch.softmax(mask_logits(logits, keep), dim=1)
    expected_first = torch.softmax(torch.tensor([1.0, 3.0]), 0)
    assert torch.allclose(weights[0], torch.tensor([expected_first[0], 0.0, expected_first[1]]))
    assert torch.allclose(weights[1], torch.full((3,), 1 / 3))  # nothing kept: uniform, not NaN


@pytest.mark.parametrize("accumulate", [False, True])
def test_routing_is_the_assignment_an_iteration_more_would_use(accumulate):
    mask = torch.tensor([[True, True]])
    capsules, routing = dynamic_routing(VOTES, mask, INITIAL, iterations=2, item_weights=ITEM_WEIGHTS, accumulate=accumulate)
    v1, _ = dynamic_routing(VOTES, mask, INITIAL, iterations=1, item_weights=ITEM_WEIGHTS)
    b2 = torch.einsum("tkd,kd->tk", VOTES[0], v1[0]) + (INITIAL[0] if accumulate else 0)
    b3 = torch.einsum("tkd,kd->tk", VOTES[0], capsules[0]) + (b2 if accumulate else 0)
    assert torch.allclose(routing[0], torch.softmax(b3, dim=-1), atol=1e-6)
    padded = dynamic_routing(VOTES, torch.tensor([[True, False]]), INITIAL, iterations=2)[1]
    assert torch.equal(padded[0, 1], torch.zeros(2))


def test_routing_overlap_by_hand():
    # user 1: both interests take both items equally (collapse): cosine 1
    # user 2: interest 0 takes item 0, interest 1 item 1: cosine 0
    # user 3: columns (1, 1) and (1, 0): cosine 1/sqrt(2)
    routing = torch.tensor([
        [[0.5, 0.5], [0.5, 0.5]],
        [[1.0, 0.0], [0.0, 1.0]],
        [[0.5, 1.0], [0.5, 0.0]],
    ])
    assert routing_overlap(routing).item() == pytest.approx((1 + 0 + 2**-0.5) / 3)
    assert routing_overlap(routing[:, :, :1]).item() == 0.0  # K = 1: no pair


def test_routing_overlap_has_gradient_through_the_last_iteration():
    votes = VOTES.clone().requires_grad_(True)
    _, routing = dynamic_routing(votes, torch.ones(1, 2, dtype=torch.bool), INITIAL, iterations=3)
    routing_overlap(routing).backward()
    assert votes.grad is not None and votes.grad.abs().sum() > 0


@pytest.mark.parametrize("harder_negatives, power", [(True, math.inf), (False, math.inf), (False, 2.0)])
@pytest.mark.parametrize("block", [128, 2])  # the shared scores in one block, in blocks of 2 columns
def test_shared_negatives_path_equals_the_per_row_path(harder_negatives, power, block, monkeypatch):
    monkeypatch.setattr(losses_module, "SHARED_SCORE_BLOCK", block)
    monkeypatch.setattr(losses_module, "TABLE_SCORES_RATIO", math.inf)  # the per-row candidates' vectors gathered
    # the shared path skips the B x K x (1 + n) copies: same loss and gradients as the
    # per-row path given the same negatives, with log-Q correction and an accidental hit
    torch.manual_seed(0)
    table = torch.randn(30, 4, requires_grad=True)
    interests = torch.randn(6, 3, 4, requires_grad=True)
    positives = torch.tensor([1, 5, 7, 7, 2, 9])
    negatives = torch.tensor([7, 11, 3, 29, 5])  # 7 and 5 are some rows' positives
    counts = torch.arange(30, dtype=torch.float64)

    def loss_of(shared):
        sampler = NegativeSampler(30, "popularity", counts)
        sampler.forward = lambda batch_size, n, device=None, after=None: negatives.unsqueeze(0).expand(batch_size, -1)
        loss = MultiInterestLoss("sampled_softmax", harder_negatives, 5, sampler, temperature=0.5,
                                 readout_power=power, shared_negatives=shared)
        value = loss(interests, positives, lambda ids=None: table if ids is None else table[ids])
        grads = torch.autograd.grad(value, [table, interests])
        return value, grads

    (shared, shared_grads), (per_row, per_row_grads) = loss_of(True), loss_of(False)
    assert shared.item() == pytest.approx(per_row.item(), rel=1e-6)
    for a, b in zip(shared_grads, per_row_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("harder_negatives, power", [(True, math.inf), (False, math.inf), (False, 2.0)])
def test_candidates_through_the_item_table_equal_their_gathered_vectors(harder_negatives, power, monkeypatch):
    # per-row candidates scored through the whole table (the readout of every item, then each
    # row's candidates picked from it) give the loss and gradients of their gathered vectors,
    # with log-Q correction, an accidental hit and a negative drawn twice in a row
    torch.manual_seed(0)
    table = torch.randn(30, 4, requires_grad=True)
    interests = torch.randn(6, 3, 4, requires_grad=True)
    positives = torch.tensor([1, 5, 7, 7, 2, 9])
    negatives = torch.tensor([[7, 11, 3, 29, 5]] * 5 + [[4, 4, 9, 12, 1]])  # row 5: 9 is its positive, 4 twice
    counts = torch.arange(30, dtype=torch.float64)
    asked = []

    def loss_of(ratio):
        monkeypatch.setattr(losses_module, "TABLE_SCORES_RATIO", ratio)
        sampler = NegativeSampler(30, "popularity", counts)
        sampler.forward = lambda batch_size, n, device=None, after=None: negatives
        loss = MultiInterestLoss("sampled_softmax", harder_negatives, 5, sampler, temperature=0.5,
                                 readout_power=power)

        def vectors(ids=None):
            asked.append(None if ids is None else tuple(ids.shape))
            return table if ids is None else table[ids]

        value = loss(interests, positives, vectors)
        return value, torch.autograd.grad(value, [table, interests])

    (through_table, table_grads), (gathered, gathered_grads) = loss_of(0), loss_of(math.inf)
    assert asked == [None, (6, 6)]  # the table's way (every item's vectors), then the gathered one
    assert through_table.item() == pytest.approx(gathered.item(), rel=1e-6)
    for a, b in zip(table_grads, gathered_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "n_candidates, d, n_interests, harder_negatives, through_table",
    [
        # ml-1m's 3,261 ids: 500 negatives at d = 128, K = 3 with HN: 501 * 128 >= 3 * 3 * 3261
        (501, 128, 3, True, True),
        (501, 64, 3, True, True),  # 32,064 >= 29,349
        (501, 64, 4, True, False),  # 32,064 < 39,132
        (501, 32, 4, True, False),  # MIND's chosen d and K: gathered
        (51, 128, 3, True, False),  # 50 negatives: gathered
        (501, 32, 6, False, True),  # without HN one product per item: 16,032 >= 9,783, whatever K
        (51, 128, 3, False, False),  # 6,528 < 9,783
        (77, 128, 3, False, True),  # 9,856 >= 9,783
        (76, 128, 3, False, False),  # 9,728 < 9,783
    ],
)
def test_table_rule_by_the_sizes(n_candidates, d, n_interests, harder_negatives, through_table, monkeypatch):
    assert scores_through_table(n_candidates, d, n_interests, 3261, harder_negatives) is through_table
    # compiled, harder negatives take the fused broadcast product instead; the others as eager
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    compiled = through_table and not harder_negatives
    assert scores_through_table(n_candidates, d, n_interests, 3261, harder_negatives) is compiled


@pytest.mark.parametrize("compiling, n_interests, n_candidates, broadcast", [
    (True, 3, 501, True),  # compiled: every number of candidates (the lookup fused into the product)
    (True, 1, 501, True),
    (False, 3, 6, False),  # eager: a batched matmul for several interests,
    (False, 1, BROADCAST_MAX_CANDIDATES, True),  # a broadcast product for one up to the limit
    (False, 1, BROADCAST_MAX_CANDIDATES + 1, False),
])
def test_candidate_scores_take_the_faster_way(compiling, n_interests, n_candidates, broadcast, monkeypatch):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
    calls = []
    real_bmm = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda *args: calls.append("bmm") or real_bmm(*args))
    candidate_scores(torch.randn(2, n_interests, 4), torch.randn(2, n_candidates, 4))
    assert calls == ([] if broadcast else ["bmm"])


def test_best_interest_scores_equal_torch_max_with_its_gradient_and_ties():
    """Values and gradients of the blockwise max over interests equal those of
    ``(interests @ vectors.T).max(dim=1)``, in blocks that do not divide the columns,
    with exact ties between interests (the gradient goes to the first, as torch.max's)."""
    torch.manual_seed(0)
    interests = torch.randn(5, 4, 3)
    interests[1, 2] = interests[1, 0]  # row 1: interests 0 and 2 tie on every column
    interests[3, 1:] = interests[3, 0]  # row 3: all four tie
    vectors = torch.randn(7, 3)
    grad_out = torch.randn(5, 7)

    def value_and_grads(function):
        a, b = interests.clone().requires_grad_(True), vectors.clone().requires_grad_(True)
        out = function(a, b)
        out.backward(grad_out)
        return out.detach(), a.grad, b.grad

    expected = value_and_grads(lambda a, b: torch.matmul(a, b.t()).max(dim=1).values)
    for block in (1, 3, 7, 100):
        got = value_and_grads(lambda a, b: BestInterestScores.apply(a, b, block))
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)
    # the tie check is real: row 3's gradient is all on interest 0, rows 1's never on interest 2
    assert expected[1][3, 1:].abs().sum() == 0 and expected[1][3, 0].abs().sum() > 0
    assert expected[1][1, 2].abs().sum() == 0


def test_popularity_sampler_matches_the_distribution_on_many_items():
    torch.manual_seed(0)
    counts = torch.zeros(1001, dtype=torch.float64)
    counts[1:] = 1.0 / torch.arange(1, 1001)  # Zipf
    draws = NegativeSampler(1001, "popularity", counts)(200, 1000).flatten()
    assert draws.min().item() >= 1 and draws.max().item() <= 1000
    observed = torch.bincount(draws, minlength=1001)[1:11].double() / draws.numel()
    expected = counts[1:11] / counts.sum()
    torch.testing.assert_close(observed, expected, rtol=0.05, atol=0.002)


@pytest.mark.parametrize("shared_first", [False, True])
def test_mlp_on_a_shared_input_equals_the_mlp_of_the_concatenation(shared_first):
    torch.manual_seed(0)
    mlp = MLP(3 + 5, 4, 2, torch.nn.Sigmoid())
    rows, shared = torch.randn(6, 7, 3, requires_grad=True), torch.randn(6, 5, requires_grad=True)
    expanded = shared.unsqueeze(1).expand(-1, 7, -1)
    parts = [expanded, rows] if shared_first else [rows, expanded]
    expected = mlp(torch.cat(parts, dim=-1))
    expected_grads = torch.autograd.grad(expected.square().sum(), [rows, shared, *mlp.parameters()])
    got = mlp.forward_shared(rows, shared, shared_first=shared_first)
    got_grads = torch.autograd.grad(got.square().sum(), [rows, shared, *mlp.parameters()])
    assert got.shape == (6, 7, 2)
    torch.testing.assert_close(got, expected)
    for a, b in zip(got_grads, expected_grads):
        torch.testing.assert_close(a, b)
    # the rows' share of the first layer is the weight's columns beside the shared vector's
    weight_rows = mlp.rows_weight(5, shared_first)
    torch.testing.assert_close(weight_rows, mlp[0].weight[:, 5:] if shared_first else mlp[0].weight[:, :3])
    torch.testing.assert_close(mlp.forward_rows_mapped(rows @ weight_rows.T, shared, shared_first), expected)


def broadcast_contractions(votes):
    """The routing's contractions written from their definition, as broadcast products
    summed over one axis (the reference for the batched matmuls of the code; the coupling
    and the agreement laid out B x K x T, as the code has them)."""
    def contract(coupling, last):
        u = votes if last else votes.detach()  # B x T x K x d
        capsules = squash((coupling.transpose(1, 2).unsqueeze(-1) * u).sum(dim=1))  # B x K x d
        return capsules, (u * capsules.unsqueeze(1)).sum(dim=-1).transpose(1, 2)  # B x K x T
    return contract


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shared_votes", [False, True])
def test_routing_by_matmuls_equals_routing_by_broadcast_products(accumulate, shared_votes, monkeypatch):
    from recbole_umi.towers import layers

    torch.manual_seed(0)
    batch, length, k, d = 4, 6, 3, 5
    if shared_votes:  # MIND: one vote per item, broadcast over the interests
        source = torch.randn(batch, length, d, requires_grad=True)
        make_votes = lambda: source.unsqueeze(2).expand(-1, -1, k, -1)  # noqa: E731
    else:
        source = torch.randn(batch, length, k, d, requires_grad=True)
        make_votes = lambda: source * 1.0  # noqa: E731
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, 4:] = False  # padding
    item_weights = torch.rand(batch, length, requires_grad=True)
    initial = torch.randn(batch, length, k)
    outputs = {}
    for path, contractions in (("broadcast", broadcast_contractions), ("matmul", layers.routing_contractions)):
        monkeypatch.setattr(layers, "routing_contractions", contractions)
        capsules, routing = dynamic_routing(make_votes(), mask, initial, 3, item_weights=item_weights,
                                            accumulate=accumulate)
        grads = torch.autograd.grad((capsules.sin().sum() + routing.square().sum()), [source, item_weights])
        outputs[path] = (capsules, routing, *grads)
    for a, b in zip(outputs["matmul"], outputs["broadcast"]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("compiling", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("iterations", [1, 3])
def test_mapped_votes_route_as_the_votes_they_stand_for(accumulate, iterations, compiling, monkeypatch):
    """UMI's and ComiRec-DR's votes given as the items and the maps (never built) route as the
    votes ``W_j e_i`` built from them: the same capsules and routing, and the same gradients
    for the items, the maps and the item weights, padding and stop-gradient iterations
    included; with the sums over the history as matmuls (eager) and as the broadcast
    products a compiled step takes."""
    from recbole_umi.towers.layers import MappedVotes

    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)

    torch.manual_seed(0)
    batch, length, k, d = 4, 6, 3, 5
    layer = torch.nn.Linear(d, k * d, bias=False)
    history = torch.randn(batch, length, d, requires_grad=True)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, 4:] = False
    mask[2, 1:] = False
    item_weights = torch.rand(batch, length, requires_grad=True)
    initial = torch.randn(batch, length, k)
    outputs = []
    for votes in (layer(history).view(batch, length, k, d), MappedVotes.of_linear(history, layer, k)):
        capsules, routing = dynamic_routing(votes, mask, initial, iterations, item_weights=item_weights,
                                            accumulate=accumulate)
        grads = torch.autograd.grad(capsules.sin().sum() + routing.square().sum(),
                                    [history, layer.weight, item_weights])
        outputs.append((capsules, routing, *grads))
    for built, mapped in zip(*outputs):
        torch.testing.assert_close(mapped, built)
    assert outputs[0][3].abs().sum() > 0  # the maps learn through the last iteration


def test_mapped_votes_read_a_linear_layers_blocks_as_the_interests():
    """Interest j's map is the j-th block of d_out output rows of the layer, as ``view(B, T,
    K, d_out)`` reads the layer's output; a layer with a bias is refused."""
    from recbole_umi.towers.layers import MappedVotes

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3 * 2, bias=False)
    history = torch.randn(2, 5, 4)
    _, maps = MappedVotes.of_linear(history, layer, 3)
    built = layer(history).view(2, 5, 3, 2)
    for j in range(3):
        torch.testing.assert_close(history @ maps[j].T, built[:, :, j])
    with pytest.raises(ValueError, match="bias-free"):
        MappedVotes.of_linear(history, torch.nn.Linear(4, 6), 3)


def test_shared_votes_route_as_their_copies():
    """MIND's votes, one per item broadcast over K, give what the same votes copied for every
    interest give (the two layouts of the one contraction)."""
    torch.manual_seed(0)
    source = torch.randn(3, 7, 4)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    initial = torch.randn(3, 7, 2)
    shared = dynamic_routing(source.unsqueeze(2).expand(-1, -1, 2, -1), mask, initial, 3, accumulate=True)
    copied = dynamic_routing(source.unsqueeze(2).repeat(1, 1, 2, 1), mask, initial, 3, accumulate=True)
    for a, b in zip(shared, copied):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("loss_type, shared, through_table, interests_dtype", [
    ("full_softmax", False, False, torch.bfloat16),
    ("sampled_softmax", True, False, torch.bfloat16),
    ("sampled_softmax", False, True, torch.bfloat16),
    ("full_softmax", False, False, torch.float32),  # float32 interests under autocast (a float32 tower)
])
def test_harder_negatives_train_under_mixed_precision(monkeypatch, loss_type, shared, through_table, interests_dtype):
    """Under autocast the interests come out of a layer in half precision while the item
    table stays float32; the harder negatives' best interests over shared candidates (full
    softmax, shared negatives, per-row negatives scored through the table) failed there: in
    the backward pass (expected m1 and m2 to have the same dtype) or, with float32
    interests, in the forward. The loss and its gradients now come as in float32, to
    bfloat16's precision."""
    if through_table:
        monkeypatch.setattr(losses_module, "TABLE_SCORES_RATIO", 0)
    torch.manual_seed(0)
    layer, table = torch.nn.Linear(4, 4), torch.nn.Parameter(torch.randn(50, 4))
    inputs, positives = torch.randn(6, 3, 4), torch.tensor([1, 5, 7, 7, 2, 9])

    def loss_and_grads(autocast: bool):
        torch.manual_seed(1)  # the same negatives
        loss = MultiInterestLoss(loss_type, True, 5, NegativeSampler(50), shared_negatives=shared)
        layer.zero_grad()
        table.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            interests = layer(inputs).to(interests_dtype) if autocast else layer(inputs)
            value = loss(interests, positives, lambda ids=None: table if ids is None else table[ids])
        value.backward()
        return value.item(), layer.weight.grad.clone(), table.grad.clone()

    exact, mixed = loss_and_grads(False), loss_and_grads(True)
    assert mixed[0] == pytest.approx(exact[0], rel=0.05)
    for got, expected in zip(mixed[1:], exact[1:]):
        assert torch.allclose(got, expected, rtol=0.1, atol=0.05)
