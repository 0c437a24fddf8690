"""Training objectives shared by every multi-interest model (paper, section 3.5).

All losses work on the interest-candidate score tensor ``S = O_u E_c^T`` of shape
``B x K x C`` (K interests, C candidates) and turn it into one logit per candidate:

- without harder negatives (Eq 10-11) the positive picks the interest
  ``k* = argmax_k S[:, k, pos]`` and every candidate is scored with that same interest
  (MIND's label-aware attention with a finite power p mixes the interests instead);
- with harder negatives (Eq 12-13) every candidate j is scored with its own best
  interest, ``logit_j = max_k S[:, k, j]``.

The logits go through softmax cross-entropy with the positive as the label (Eq 14), over
sampled negatives (``sampled_softmax``) or over the whole catalogue (``full_softmax``).
Sampled negatives are drawn per positive, or once per batch and shared by every row
(``shared_negatives``, the paper's industrial setting: 10,240 per batch). With popularity
sampling every candidate's logit is corrected by ``- log(n * q_j)`` (log-Q correction, as
TensorFlow's ``sampled_softmax_loss`` does), so that the sampled softmax estimates the full
one; under uniform sampling the correction is a constant and changes nothing.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_umi.settings import LOSS_TYPES, NEGATIVE_SAMPLERS, SettingsError, check
from recbole_umi.towers.layers import mask_logits
from recbole_umi.towers.ops import randint_after
from recbole_umi.towers.settings import ObjectiveSettings

__all__ = [
    "LOSS_TYPES",
    "NEGATIVE_SAMPLERS",
    "LossConfigError",
    "ItemVectors",
    "interest_weights",
    "readout_logits",
    "shared_readout",
    "candidate_scores",
    "scores_through_table",
    "NegativeSampler",
    "MultiInterestLoss",
]

# The model's item vectors: ``item_vectors()`` gives every item's (``n_items x d``, row 0
# the padding item), ``item_vectors(ids)`` those of the ids (shape ``S`` -> ``S x d``), so
# that a sampled softmax computes the vectors of its candidates only.
ItemVectors = Callable[..., torch.Tensor]


class LossConfigError(SettingsError):
    """The loss settings do not fit the dataset (more negatives than items, say)."""


def interest_weights(positive_scores: torch.Tensor, readout_power: float = math.inf) -> torch.Tensor:
    """The readout without harder negatives, in one place: how much each of a row's K
    interests scores every candidate, from the interests' scores of the row's positive.

    ``readout_power`` ``inf``: one-hot on the positive's best interest o* (Eq 10-11); a
    finite p: ``softmax_k(p * S_k,pos)``, MIND's label-aware attention with sharpness p.
    (MIND writes ``pow(S, p)``, which is undefined or reverses the order for negative dot
    products; ``p * S`` keeps the order and tends to the argmax as p grows.) A candidate's
    logit is then the weighted sum of its K scores, which is its score with the weighted sum
    of the interests: :func:`readout_logits` applies the weights to scores, :func:`shared_readout`
    to the interests. With harder negatives (Eq 12-13) each candidate takes its own best
    interest instead.

    Shapes: ``B x K`` -> ``B x K``.
    """
    if math.isinf(readout_power):  # a one-hot weight picks a score exactly: 1 * s + 0 * t = s
        return F.one_hot(positive_scores.argmax(dim=1), positive_scores.size(1)).to(positive_scores.dtype)
    return torch.softmax(readout_power * positive_scores, dim=1)


def readout_logits(
    scores: torch.Tensor,
    positive_column: torch.Tensor,
    harder_negatives: bool,
    readout_power: float = math.inf,
) -> torch.Tensor:
    """One logit per candidate from the interest scores of candidates of each row's own.

    Args:
        scores: ``B x K x C``, ``S[b, k, j] = o_k . e_j``.
        positive_column: ``B``, the column of each row's positive candidate.
        harder_negatives: each candidate takes its own best interest (Eq 12-13).
        readout_power: without HN, see :func:`interest_weights`.

    Returns:
        ``B x C`` logits.
    """
    if harder_negatives:
        return scores.max(dim=1).values
    positive_scores = scores.gather(
        2, positive_column.view(-1, 1, 1).expand(-1, scores.size(1), 1)
    ).squeeze(2)  # B x K
    weights = interest_weights(positive_scores, readout_power)
    return (weights.unsqueeze(2) * scores).sum(dim=1)


# Columns of shared candidates scored per block by :class:`BestInterestScores`: a block's
# K x B x 128 scores (3 MB at B = 1024, K = 6) stay in cache (docs/benchmarks.md).
SHARED_SCORE_BLOCK = 128


class BestInterestScores(torch.autograd.Function):
    """``max_k interests[b, k] . vectors[j]`` for candidates shared by the batch (``B x K x
    d`` and ``n x d`` -> ``B x n``), with the gradient of ``torch.max``, without the ``B x K
    x n`` score tensor: scores are made ``block`` columns at a time and kept only as their
    maximum; the backward pass makes each block again and sends each gradient to the first
    best interest, as ``torch.max`` does. With 10,240 shared negatives the full tensor is 250 MB,
    and its max, zero-filled gradient and scatter cost about as much as the matmuls."""

    @staticmethod
    def forward(ctx, interests: torch.Tensor, vectors: torch.Tensor, block: int = SHARED_SCORE_BLOCK) -> torch.Tensor:
        batch_size, k, d = interests.shape
        by_interest = interests.transpose(0, 1).reshape(k * batch_size, d)  # rows k * B + b
        best = interests.new_empty(batch_size, vectors.size(0))
        for start in range(0, vectors.size(0), block):
            scores = (by_interest @ vectors[start:start + block].t()).view(k, batch_size, -1)
            torch.amax(scores, dim=0, out=best[:, start:start + block])
        ctx.save_for_backward(by_interest, vectors)
        ctx.block, ctx.k = block, k
        return best

    @staticmethod
    def backward(ctx, grad_best: torch.Tensor):
        by_interest, vectors = ctx.saved_tensors
        k, block = ctx.k, ctx.block
        batch_size = by_interest.size(0) // k
        grad_interests = torch.zeros_like(by_interest)
        grad_vectors = torch.empty_like(vectors)
        for start in range(0, vectors.size(0), block):
            block_vectors = vectors[start:start + block]
            scores = (by_interest @ block_vectors.t()).view(k, batch_size, -1)  # made again
            chosen = scores == scores.amax(dim=0)  # K x B x c
            if torch.count_nonzero(chosen) != chosen[0].numel():  # ties: the first best interest takes it, as in torch.max
                chosen &= chosen.cumsum(dim=0) == 1
            grad_scores = chosen.to(grad_best.dtype).mul_(grad_best[:, start:start + block])
            grad_scores = grad_scores.view(k * batch_size, -1)
            grad_interests.addmm_(grad_scores, block_vectors)
            torch.mm(grad_scores.t(), by_interest, out=grad_vectors[start:start + block])
        return grad_interests.view(k, batch_size, -1).transpose(0, 1), grad_vectors, None


# Compiled (``compile_step``), harder negatives' best interest over shared candidates comes
# from the whole B x K x n score tensor, a matmul and a max over K that inductor fuses and
# differentiates, where it holds at most this many scores (128 MB in float32): at ml-1m's
# full softmax (B = 1024, 3,261 items, any K up to 10) the compiled steps of UMI, MIND and
# ComiRec-DR were 1.16-1.41x faster than through :class:`BestInterestScores` at 1 thread, UMI's
# 1.49x at 2 (docs/benchmarks.md, "The full softmax's best interests, compiled"); eager, and
# beyond it (the industrial 10,240 shared negatives at K = 6: 63M scores), block by block.
DENSE_BEST_MAX_SCORES = 2 ** 25


def shared_readout(
    interests: torch.Tensor,
    positive_scores: torch.Tensor,
    negative_vectors: torch.Tensor,
    harder_negatives: bool,
    readout_power: float = math.inf,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`readout_logits` for a positive per row (``B x K`` scores) and negatives shared
    by the batch (``n x d`` vectors): with harder negatives, each negative's best interest
    through :class:`BestInterestScores`, without a ``B x K x n`` tensor (compiled, from that
    tensor up to :data:`DENSE_BEST_MAX_SCORES`); otherwise the :func:`interest_weights` mix
    each row's interests into one vector (the readout is linear in the scores), scored by one
    ``B x d`` by ``d x n`` product. Returns the positives' ``B`` logits and the negatives'
    ``B x n``."""
    if harder_negatives:
        batch_size, k, _ = interests.shape
        if torch.compiler.is_compiling() and batch_size * k * negative_vectors.size(0) <= DENSE_BEST_MAX_SCORES:
            best = torch.matmul(interests, negative_vectors.t()).max(dim=1).values  # B x n, torch.max's gradient
        else:
            # outside autocast, the vectors in the interests' type: under mixed precision the
            # interests come out of a layer in half precision and the item table stays float32,
            # and the backward pass, which makes the scores again, runs without autocast
            with torch.autocast(interests.device.type, enabled=False):
                best = BestInterestScores.apply(interests, negative_vectors.to(interests.dtype), SHARED_SCORE_BLOCK)
        return positive_scores.max(dim=1).values, best
    weights = interest_weights(positive_scores, readout_power)  # B x K
    readout = (weights.unsqueeze(2) * interests).sum(dim=1)  # B x d
    return (weights * positive_scores).sum(dim=1), readout @ negative_vectors.t()


# Per-row candidates' scores are a broadcast product summed over d where that is faster than
# a batched matmul: compiled (``compile_step``) up to COMPILED_BROADCAST_MAX_CANDIDATES, every
# number, inductor fusing the candidates' lookup, the product and its sum into one reduction
# (1.2-3x faster steps than the matmul with 500 negatives a row on ml-1m, at 1 and 2 threads;
# docs/benchmarks.md, "Per-row candidates through the item table"); eager, for one interest up
# to BROADCAST_MAX_CANDIDATES (bench/bench_small_ops.py); a batched matmul otherwise.
BROADCAST_MAX_CANDIDATES = 64
COMPILED_BROADCAST_MAX_CANDIDATES = math.inf


# Per-row candidates are scored through the whole item table (the readout of every item, then
# each row's candidates picked from it) where the catalogue is small beside them: where C * d >=
# TABLE_SCORES_RATIO * n_items without harder negatives, and, eager, >= TABLE_SCORES_RATIO *
# n_items * K with them. Gathering C vectors per row moves B * C * d entries both ways (its
# backward a scatter into the table); the table's readout makes B * n_items scores without
# harder negatives (one product, whatever K) and B * K * n_items with them, whose products run
# faster the larger d is. Compiled, with harder negatives, the fused broadcast product above
# beat the table at every size measured. The ratio is fitted to steps measured on ml-1m (3,260
# items; docs/benchmarks.md, "Per-row candidates through the item table"): 500 negatives a
# row take the table's way without harder negatives at any d, and with them eager at d = 64 or
# 128 (K = 3); 50 negatives do not.
TABLE_SCORES_RATIO = 3


def scores_through_table(n_candidates: int, embedding_size: int, n_interests: int, n_items: int,
                         harder_negatives: bool) -> bool:
    """Whether ``n_candidates`` per row of ``embedding_size`` are scored through the whole
    item table (:data:`TABLE_SCORES_RATIO`): the same logits, computed another way."""
    if harder_negatives and torch.compiler.is_compiling() and n_candidates <= COMPILED_BROADCAST_MAX_CANDIDATES:
        return False  # the fused broadcast product of candidate_scores is faster
    scores = n_items * (n_interests if harder_negatives else 1)
    return n_candidates * embedding_size >= TABLE_SCORES_RATIO * scores


def candidate_scores(interests: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """``S[b, k, c] = o_k . e_c`` for per-row candidates.

    Shapes: ``interests: B x K x d``, ``candidates: B x C x d`` -> ``B x K x C``.
    """
    if torch.compiler.is_compiling():
        broadcast = candidates.size(1) <= COMPILED_BROADCAST_MAX_CANDIDATES
    else:
        broadcast = interests.size(1) == 1 and candidates.size(1) <= BROADCAST_MAX_CANDIDATES
    if broadcast:
        return (interests.unsqueeze(2) * candidates.unsqueeze(1)).sum(dim=-1)
    return torch.bmm(interests, candidates.transpose(1, 2))


class NegativeSampler(nn.Module):
    """Draws negative item ids (1 .. n_items-1; 0 is padding), with replacement.

    Args:
        n_items: RecBole's ``n_items`` (padding id 0 included).
        distribution: ``uniform`` or ``popularity`` (proportional to training counts).
        item_counts: ``n_items`` training counts, needed for ``popularity``.
    """

    def __init__(self, n_items: int, distribution: str = "uniform", item_counts: torch.Tensor | None = None):
        super().__init__()
        check("negative_sampler", distribution)
        self.n_items = n_items
        self.distribution = distribution
        if distribution == "popularity":
            probabilities = item_counts.double().clone()
            probabilities[0] = 0.0
            if probabilities.sum() <= 0:
                raise LossConfigError("negative_sampler", distribution, "needs items with training interactions")
            self.register_buffer("probabilities", probabilities / probabilities.sum(), persistent=False)
            # inverse-CDF sampling: a binary search per draw (torch.multinomial walks the
            # whole distribution on every call, slow for millions of items)
            self.register_buffer("cumulative", torch.cumsum(self.probabilities, dim=0), persistent=False)

    def forward(self, batch_size: int, n_negatives: int, device=None, after: torch.Tensor | None = None) -> torch.Tensor:
        """``batch_size x n_negatives`` item ids. Uniform ones are drawn once ``after`` (the
        interests they are scored against), where given, is computed: compiled code then draws
        them where eager code does (``ops.randint_after``), after the tower's dropouts. Those
        by popularity are not (drawn that way the compiled step with 500 of them a row was
        0.89x as fast: docs/benchmarks.md): compiled, they may be drawn before the dropouts
        (the same distributions, other values from a seed than eager)."""
        if self.distribution == "uniform":
            if after is None:
                return torch.randint(1, self.n_items, (batch_size, n_negatives), device=device)
            return randint_after(1, self.n_items, (batch_size, n_negatives), after, device=device)
        draws = torch.rand(batch_size * n_negatives, dtype=torch.float64, device=self.cumulative.device)
        flat = torch.searchsorted(self.cumulative, draws * self.cumulative[-1], right=True)
        flat = flat.clamp(1, self.n_items - 1)  # P(item) = its probability; 0 (padding) has none
        return flat.view(batch_size, n_negatives).to(device)

    def log_expected_count(self, items: torch.Tensor, n_negatives: int,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``log(n * q_j)`` of each item id in ``items`` (any shape) under popularity sampling,
        computed in float64 and given as ``dtype`` (the logits' it corrects, at least float32)."""
        return torch.log(n_negatives * self.probabilities[items]).to(torch.promote_types(dtype, torch.float32))


class MultiInterestLoss(nn.Module):
    """Softmax cross-entropy of the positive item against negatives, for K interests.

    Args:
        loss_type: ``sampled_softmax`` (``n_negatives`` per positive) or ``full_softmax``.
        harder_negatives: score each candidate with its own best interest (HN).
        n_negatives: negatives per positive for ``sampled_softmax``.
        sampler: draws the negatives.
        temperature: logits are divided by it (tau > 0).
        readout_power: see :func:`interest_weights`.
        shared_negatives: draw ``n_negatives`` once per batch for all rows.
        logq_correction: subtract ``log(n * q_j)`` from the logits under popularity sampling.

    Each argument is checked as the setting of the same name (``temperature`` as
    ``softmax_temperature``) in :mod:`recbole_umi.settings`. A sampled negative equal to
    the row's positive (an accidental hit) is left out of that row's softmax; in
    ``full_softmax`` the padding item 0 is left out.
    """

    def __init__(
        self,
        loss_type: str,
        harder_negatives: bool,
        n_negatives: int,
        sampler: NegativeSampler,
        temperature: float = 1.0,
        readout_power: float = math.inf,
        shared_negatives: bool = False,
        logq_correction: bool = True,
    ):
        super().__init__()
        self.loss_type = check("loss_type", loss_type)
        self.harder_negatives = check("harder_negatives", harder_negatives)
        self.n_negatives = check("n_negatives", n_negatives)
        self.temperature = check("softmax_temperature", temperature)
        self.readout_power = check("readout_power", readout_power)
        self.shared_negatives = check("shared_negatives", shared_negatives)
        real_items = sampler.n_items - 1
        if self.loss_type == "sampled_softmax" and not n_negatives < real_items:
            raise LossConfigError(
                "n_negatives", n_negatives, f"must be below the number of items ({real_items}) for sampled_softmax"
            )
        self.sampler = sampler
        self.logq_correction = check("logq_correction", logq_correction) and sampler.distribution == "popularity"

    @classmethod
    def from_settings(cls, settings: ObjectiveSettings, n_items: int, item_counts: torch.Tensor | None = None,
                      readout_power: float = math.inf) -> "MultiInterestLoss":
        """The loss ``settings`` describe, over ``n_items`` item ids (0 the padding item);
        ``item_counts`` (``n_items`` training counts) for popularity sampling;
        ``readout_power`` is the tower's (MIND's label-aware attention), ``inf`` for the others."""
        return cls(
            loss_type=settings.loss_type,
            harder_negatives=settings.harder_negatives,
            n_negatives=settings.n_negatives,
            sampler=NegativeSampler(n_items, settings.negative_sampler, item_counts),
            temperature=settings.softmax_temperature,
            readout_power=readout_power,
            shared_negatives=settings.shared_negatives,
            logq_correction=settings.logq_correction,
        )

    def forward(self, interests: torch.Tensor, positives: torch.Tensor, item_vectors: ItemVectors) -> torch.Tensor:
        """Mean loss over the batch.

        Args:
            interests: O_u, ``B x K x d``.
            positives: ``B`` positive item ids.
            item_vectors: the model's item vectors (:data:`ItemVectors`); asked for the
                candidates' only, except by ``full_softmax``.
        """
        if self.loss_type == "full_softmax":
            logits = self._every_items_logits(interests, positives, item_vectors)
            not_padding = torch.arange(logits.size(1), device=logits.device) != 0
            return F.cross_entropy(mask_logits(logits / self.temperature, not_padding), positives)
        if self.shared_negatives:
            return self._shared_negatives_loss(interests, positives, item_vectors)
        negatives = self.sampler(positives.size(0), self.n_negatives, positives.device, after=interests)  # B x n
        candidate_ids = torch.cat([positives.unsqueeze(1), negatives], dim=1)  # B x (1 + n)
        positive_column = torch.zeros_like(positives)  # column 0 holds each row's positive
        if scores_through_table(candidate_ids.size(1), interests.size(2), interests.size(1), self.sampler.n_items,
                                self.harder_negatives):
            # every item's logit (the full softmax's), then each row's candidates'
            logits = self._every_items_logits(interests, positives, item_vectors).gather(1, candidate_ids)
        else:
            scores = candidate_scores(interests, item_vectors(candidate_ids))  # B x K x (1 + n)
            logits = readout_logits(scores, positive_column, self.harder_negatives, self.readout_power)
        logits = logits / self.temperature
        if self.logq_correction:
            logits = logits - self.sampler.log_expected_count(candidate_ids, self.n_negatives, logits.dtype)
        not_accidental_hit = candidate_ids != positives.unsqueeze(1)
        not_accidental_hit[:, 0] = True  # the positive itself
        return F.cross_entropy(mask_logits(logits, not_accidental_hit), positive_column)

    def _every_items_logits(self, interests: torch.Tensor, positives: torch.Tensor,
                            item_vectors: ItemVectors) -> torch.Tensor:
        """Every item's ``B x n_items`` logits (before the temperature), the whole catalogue
        as candidates shared by the batch: :func:`shared_readout`, without the B x K x
        n_items scores, whose readout over K costs more than the products
        (bench/bench_full_softmax.py)."""
        vectors = item_vectors()  # n_items x d
        # the positive's logit is its own column of the logits: its B x K scores only choose
        # or weight the interests of the readout without HN
        positive_scores = (interests * vectors[positives].unsqueeze(1)).sum(dim=-1)  # B x K
        return shared_readout(interests, positive_scores, vectors, self.harder_negatives, self.readout_power)[1]

    def _shared_negatives_loss(self, interests: torch.Tensor, positives: torch.Tensor, item_vectors: ItemVectors) -> torch.Tensor:
        """The loss with one set of negatives for the whole batch, as :meth:`forward` computes
        it per row, without the per-row copies of the shared columns (``B x K x (1 + n)``
        scores, ``B x (1 + n)`` candidate ids): the paper's 10,240 negatives over millions
        of items (bench/bench_industrial_loss.py)."""
        batch_size = positives.size(0)
        negatives = self.sampler(1, self.n_negatives, positives.device, after=interests)[0]  # n
        # one lookup: an embedding's backward writes a dense table-sized gradient per lookup
        vectors = item_vectors(torch.cat([positives, negatives]))
        positive_scores = (interests * vectors[:batch_size].unsqueeze(1)).sum(dim=-1)  # B x K
        positive, negative = shared_readout(interests, positive_scores, vectors[batch_size:],
                                            self.harder_negatives, self.readout_power)
        # the B x n negative logits change in place: a new tensor of that size costs a pass and,
        # allocated afresh each batch, the page faults of its first writes
        if self.temperature != 1.0:
            positive = positive / self.temperature  # B
            negative = negative.div_(self.temperature)  # B x n
        if self.logq_correction:
            positive = positive - self.sampler.log_expected_count(positives, self.n_negatives, positive.dtype)
            negative = negative.sub_(self.sampler.log_expected_count(negatives, self.n_negatives, negative.dtype))
        accidental_hit = negatives.unsqueeze(0) == positives.unsqueeze(1)  # left out of the softmax
        negative = negative.masked_fill_(accidental_hit, torch.finfo(negative.dtype).min)
        # softmax cross-entropy with the positive as the label, without concatenating the
        # B x (1 + n) logits: log(e^pos + sum_j e^neg_j) - pos
        return (torch.logaddexp(positive, torch.logsumexp(negative, dim=1)) - positive).mean()
