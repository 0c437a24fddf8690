"""Building blocks shared by the multi-interest models: squash, MLPs and routing."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_umi.towers.ops import Linear, ReLU, Tanh

__all__ = [
    "mask_logits",
    "squash",
    "MLP",
    "RoutingLogits",
    "MappedVotes",
    "dynamic_routing",
    "routing_contractions",
    "mean_pairwise_cosine",
    "routing_overlap",
    "SelfAttentiveExtractor",
    "PositionMaps",
    "profile_refinement",
]


def mask_logits(logits: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``logits`` with every position where ``keep`` is False set to the dtype's lowest
    finite value: zero weight under a softmax, and no NaN even where a row keeps nothing
    (``-inf`` would give one).

    Shapes: ``keep`` broadcasts to ``logits``; the result has the shape of ``logits``.
    """
    return logits.masked_fill(~keep, torch.finfo(logits.dtype).min)


def squash(z: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Capsule squash (Eq 6): ``|z|^2 / (1 + |z|^2) * z / |z|`` along the last dim.

    Shapes: ``... x d`` -> ``... x d``.
    """
    squared_norm = (z * z).sum(dim=-1, keepdim=True)
    return squared_norm / (1.0 + squared_norm) * z / torch.sqrt(squared_norm + eps)


class MLP(nn.Sequential):
    """Two-layer perceptron ``Linear -> ReLU -> Linear`` with an optional output activation.

    Shapes: ``... x in_size`` -> ``... x out_size``.
    """

    def __init__(self, in_size: int, hidden_size: int, out_size: int, output_activation: nn.Module | None = None):
        layers = [nn.Linear(in_size, hidden_size), ReLU(), nn.Linear(hidden_size, out_size)]
        if output_activation is not None:
            layers.append(output_activation)
        super().__init__(*layers)

    def forward_shared(self, rows: torch.Tensor, shared: torch.Tensor, shared_first: bool = False) -> torch.Tensor:
        """The MLP of ``[rows_t ; shared]`` (``[shared ; rows_t]`` with ``shared_first``) for
        every position t, without building that concatenation: the first layer's share of
        ``shared`` is computed once per row and added to every position (a user's profile
        beside each of T history items costs T times less). The same function as
        ``self(torch.cat(...))``, with the same weights, up to float rounding.

        Shapes: ``rows`` ``B x T x a``, ``shared`` ``B x b`` -> ``B x T x out_size``.
        """
        rows_part = F.linear(rows, self.rows_weight(shared.size(-1), shared_first))
        return self.forward_rows_mapped(rows_part, shared, shared_first)

    def rows_weight(self, shared_size: int, shared_first: bool = False) -> torch.Tensor:
        """The first layer's weight on the rows of :meth:`forward_shared` (its columns other
        than the ``shared_size`` of the shared vector), ``hidden x a``."""
        weight = self[0].weight
        return weight[:, shared_size:] if shared_first else weight[:, :weight.size(1) - shared_size]

    def forward_rows_mapped(self, rows_part: torch.Tensor, shared: torch.Tensor,
                            shared_first: bool = False) -> torch.Tensor:
        """:meth:`forward_shared` given the rows' share of the first layer, ``F.linear(rows,
        self.rows_weight(...))``, computed elsewhere (``ops.mapped_lookup``: over an item
        table's rows).

        Shapes: ``rows_part`` ``B x T x hidden``, ``shared`` ``B x b`` -> ``B x T x out_size``.
        """
        first = self[0]
        b = shared.size(-1)
        weight_shared = first.weight[:, :b] if shared_first else first.weight[:, first.weight.size(1) - b:]
        hidden = rows_part + F.linear(shared, weight_shared, first.bias).unsqueeze(-2)
        for layer in list(self)[1:]:
            hidden = layer(hidden)
        return hidden


class RoutingLogits(nn.Module):
    """The routing logits b_ij before the first iteration, drawn from N(0, std^2) (UMI,
    MIND): fresh draws while training; in evaluation one fixed draw, kept as a buffer and
    saved with the model, so that a user's interests (and so ``predict`` and
    ``full_sort_predict``) are the same on every call and after reloading.

    Args:
        max_length: T, the longest history.
        n_interests: K.
        std: sigma.

    Shapes: ``forward(batch_size, length)`` -> ``B x length x K`` (no gradient).
    """

    def __init__(self, max_length: int, n_interests: int, std: float):
        super().__init__()
        self.std = std
        self.register_buffer("eval_logits", torch.randn(max_length, n_interests) * std)

    def forward(self, batch_size: int, length: int) -> torch.Tensor:
        if self.training:
            shape = (batch_size, length, self.eval_logits.size(1))
            return torch.randn(shape, device=self.eval_logits.device) * self.std
        return self.eval_logits[:length].unsqueeze(0).expand(batch_size, -1, -1)

    def favoured(self, length: int) -> torch.Tensor | None:
        """For each of the first ``length`` history positions, the interest that the
        evaluation draw favours (its largest initial logit), ``length``; None when sigma is 0
        (no draw, nothing favoured)."""
        if self.std == 0:
            return None
        return self.eval_logits[:length].argmax(dim=-1)


class MappedVotes(NamedTuple):
    """Votes of their own per interest, ``u_ij = maps[j] @ e_i`` (UMI's and ComiRec-DR's shared
    bilinear maps, one bias-free ``d -> K*d`` layer), given by the items and the maps without
    being built: :func:`dynamic_routing` moves the maps out of its sums over the items
    (``z_j = W_j sum_i c_ij e_i`` and ``u_ij . v_j = e_i . (W_j^T v_j)``), the same routing up
    to float rounding with no ``B x T x K x d`` tensor and less arithmetic: forward and
    backward 2.2x faster at ml-1m's sizes, 7x at the synthetic benchmark's (docs/benchmarks.md).

    Attributes:
        history: the items e_i, ``B x T x d``.
        maps: W_j, ``K x d_out x d`` (an ``nn.Linear(d, K*d_out)`` weight viewed so).
    """

    history: torch.Tensor
    maps: torch.Tensor

    @property
    def dtype(self) -> torch.dtype:
        return self.history.dtype

    @classmethod
    def of_linear(cls, history: torch.Tensor, layer: nn.Linear, n_interests: int) -> "MappedVotes":
        """The votes of the bias-free ``layer`` (``d -> K*d_out``, its output read as K
        blocks of d_out, interest j the j-th) on ``history``."""
        if layer.bias is not None:
            raise ValueError("mapped votes need a bias-free map")
        return cls(history, layer.weight.view(n_interests, -1, layer.in_features))


def dynamic_routing(
    votes: torch.Tensor | MappedVotes,
    mask: torch.Tensor,
    initial_logits: torch.Tensor,
    iterations: int,
    item_weights: torch.Tensor | None = None,
    accumulate: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Behaviour-to-interest dynamic routing, in the three flavours the models need.

    Every iteration: ``c_ij = softmax_j(b_ij)`` over the K interests (padded items get
    c = 0), ``z_j = sum_i a_i c_ij u_ij``, ``v_j = squash(z_j)``, then the logits are
    updated with the agreement ``u_ij . v_j``: replaced (UMI, Algorithm 1 line 8) or
    accumulated (``accumulate=True``: MIND, ComiRec-DR). All iterations but the last see
    the votes and item weights without gradient; the last one carries the gradient.

    Args:
        votes: u_ij, ``B x T x K x d`` (MIND's shared map is broadcast over K by the caller),
            or :class:`MappedVotes` (the same routing, never building them).
        mask: ``B x T``, True for real items.
        initial_logits: b_ij before the first iteration, ``B x T x K`` (no gradient).
        iterations: t >= 1.
        item_weights: a_i, ``B x T`` (UMI's UGANet), or None for uniform weights.
        accumulate: ``b += u . v`` instead of ``b = u . v``.

    Returns:
        The interest capsules v, ``B x K x d``, and the routing of the items to them,
        ``B x T x K``: ``softmax_j`` of the logits an iteration after the last would use
        (each item's assignment to the final capsules; 0 for padded items), with gradient
        through the last iteration, for diagnostics and routing regularisation (a transposed
        view of the ``B x K x T`` layout the routing works in: not contiguous).
    """
    if iterations < 1:
        raise ValueError(f"routing needs at least one iteration, got {iterations}")
    # laid out B x K x T: a softmax over the K interests is then over a dimension other than
    # the innermost, 2.4-3.4x faster on CPU than over K innermost entries (docs/benchmarks.md)
    mask = mask.to(votes.dtype).unsqueeze(1)  # B x 1 x T
    weights = mask if item_weights is None else mask * item_weights.unsqueeze(1)
    contract = routing_contractions(votes)
    logits = initial_logits.detach().transpose(1, 2)
    for iteration in range(iterations):
        last = iteration == iterations - 1
        w = weights if last else weights.detach()
        coupling = torch.softmax(logits, dim=1) * w  # B x K x T; a_i c_ij
        capsules, agreement = contract(coupling, last)  # B x K x d, B x K x T
        logits = logits + agreement if accumulate else agreement
        if not last:
            logits = logits.detach()
    return capsules, (torch.softmax(logits, dim=1) * mask).transpose(1, 2)


def routing_contractions(votes: torch.Tensor | MappedVotes, broadcast_sums: bool | None = None):
    """The routing's two contractions over the history. Returns ``contract(coupling, last) ->
    (squash(z), agreement)`` for ``votes`` ``B x T x K x d`` and the coupling laid out
    ``B x K x T``: ``z_j = sum_i coupling_ji u_ij`` (``B x K x d``) and ``agreement_ji =
    u_ij . v_j`` (``B x K x T``), with the votes' gradient only when ``last``.

    :class:`MappedVotes` are contracted through the items and the maps (its docstring).
    Votes of their own per interest (ComiRec-DR's per-position maps) are laid out
    ``B x K x T x d`` once per forward and contracted batched over (B, K); votes every
    interest shares (MIND's, a view broadcast over K) stay ``B x T x d`` and are contracted
    batched over B, 2-4x faster than copying them K times (bench/bench_routing.py,
    docs/benchmarks.md). For mapped votes the contractions over the history are batched
    matmuls eager and, compiled (``compile_step``), broadcast products summed over one axis,
    which inductor fuses into loops of its own instead of a matmul per user: 1.25-1.3x faster
    at T = 10, 1.05-1.15x at T = 50 (:func:`_pool`, :func:`_agree`; ``bench/bench_small_ops.py``).
    For MIND's shared votes the broadcast products gain nothing at T = 10 and lose 1.2x at
    T = 50: they stay matmuls. ``broadcast_sums`` True or False takes one form or the other
    for both (what the benchmark compares); None, the choice above."""
    if isinstance(votes, MappedVotes):
        history, maps = votes
        broadcast = torch.compiler.is_compiling() if broadcast_sums is None else broadcast_sums

        def contract_mapped(coupling, last):
            e, w = (history, maps) if last else (history.detach(), maps.detach())
            pooled = _pool(coupling, e, broadcast)  # B x K x d: sum_i c_ji e_i
            capsules = squash(torch.bmm(pooled.transpose(0, 1), w.transpose(1, 2)).transpose(0, 1))  # B x K x d_out
            pulled_back = torch.bmm(capsules.transpose(0, 1), w).transpose(0, 1)  # B x K x d: W_j^T v_j
            return capsules, _agree(pulled_back, e, broadcast)  # B x K x T
        return contract_mapped
    if votes.stride(2) == 0:  # one vote per item for every interest
        shared = votes[:, :, 0]  # B x T x d
        broadcast = bool(broadcast_sums)

        def contract_shared(coupling, last):
            u = shared if last else shared.detach()
            capsules = squash(_pool(coupling, u, broadcast))  # B x K x d
            return capsules, _agree(capsules, u, broadcast)  # B x K x T
        return contract_shared
    by_interest = votes.transpose(1, 2).contiguous()  # B x K x T x d

    def contract(coupling, last):
        u = by_interest if last else by_interest.detach()
        capsules = squash(torch.matmul(coupling.unsqueeze(-2), u).squeeze(-2))  # B x K x d
        return capsules, torch.matmul(u, capsules.unsqueeze(-1)).squeeze(-1)  # B x K x T
    return contract


def _pool(coupling: torch.Tensor, items: torch.Tensor, broadcast: bool) -> torch.Tensor:
    """``sum_t coupling[b, k, t] items[b, t]``: ``B x K x T``, ``B x T x d`` -> ``B x K x d``,
    a broadcast product summed over T or a batched matmul."""
    if broadcast:
        return (coupling.unsqueeze(-1) * items.unsqueeze(1)).sum(dim=2)
    return torch.bmm(coupling, items)


def _agree(vectors: torch.Tensor, items: torch.Tensor, broadcast: bool) -> torch.Tensor:
    """``vectors[b, k] . items[b, t]``: ``B x K x d``, ``B x T x d`` -> ``B x K x T``, a
    broadcast product summed over d or a batched matmul."""
    if broadcast:
        return (vectors.unsqueeze(2) * items.unsqueeze(1)).sum(dim=-1)
    return torch.bmm(vectors, items.transpose(1, 2))


def mean_pairwise_cosine(vectors: torch.Tensor) -> torch.Tensor:
    """Each user's mean cosine over the pairs k != l of its K vectors (0 where K = 1).

    Shapes: ``B x K x n`` -> ``B``.
    """
    k = vectors.size(1)
    if k < 2:
        return vectors.new_zeros(vectors.size(0))
    unit = F.normalize(vectors, dim=-1)
    cosine = torch.matmul(unit, unit.transpose(1, 2))  # B x K x K
    off_diagonal = cosine.sum(dim=(1, 2)) - cosine.diagonal(dim1=1, dim2=2).sum(dim=1)
    return off_diagonal / (k * (k - 1))


def routing_overlap(routing: torch.Tensor) -> torch.Tensor:
    """How alike the K interests' routings are: the mean cosine, over users and pairs of
    interests k != l, of the columns ``routing[:, :, k]`` (each a weight per history item).
    1 when every interest takes the same items in the same proportions (routing collapse),
    0 when no two interests share an item. A user with K = 1 has no pair: 0.

    Shapes: ``B x T x K`` -> scalar.
    """
    return mean_pairwise_cosine(routing.transpose(1, 2)).mean()


class SelfAttentiveExtractor(nn.Module):
    """ComiRec-SA's multi-head self-attention over the history (Lin et al., ICLR'17, as the
    official ComiRec code has it).

    ``A = softmax_T(W2 tanh(W1 (H + P) + b1) + b2)`` with one head per interest, masked over
    padding, ``P`` a learned embedding of the T positions (``max_length``; None: no position
    embedding, the biases kept); ``V = A^T H`` (the interests are sums of item embeddings,
    without the positions).

    With ``context_size`` (UMISA's profile-steered queries), a context vector c of each user
    enters the heads' hidden layer: ``tanh(W1 (H + P) + U c + b1)``, so that which positions
    each head attends to depends on c (``U`` has no bias; ``context`` then is required).

    Shapes: ``H: B x T x d``, ``mask: B x T``, ``context: B x c`` -> ``V: B x K x d`` and
    ``A: B x T x K``.
    """

    def __init__(self, embedding_size: int, hidden_size: int, n_interests: int, max_length: int | None = None,
                 context_size: int | None = None):
        super().__init__()
        self.attention = nn.Sequential(  # compiled on the CPU, the faster ways of towers.ops
            Linear(embedding_size, hidden_size),
            Tanh(),
            Linear(hidden_size, n_interests),
        )
        self.positions = None
        if max_length is not None:
            self.positions = nn.Parameter(torch.empty(max_length, embedding_size))
            nn.init.xavier_uniform_(self.positions)
        self.context = nn.Linear(context_size, hidden_size, bias=False) if context_size is not None else None

    def scores(self, history: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Each head's score of each position before the softmax: ``B x T x d`` -> ``B x T x K``."""
        keys = history if self.positions is None else history + self.positions[: history.size(1)]
        if (context is None) != (self.context is None):
            raise ValueError("a context vector is needed exactly when the extractor was built with context_size")
        if self.context is None:
            return self.attention(keys)
        first, activation, second = self.attention
        return second(activation(first(keys) + self.context(context).unsqueeze(1)))

    def forward(self, history: torch.Tensor, mask: torch.Tensor,
                context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.scores(history, context)
        attention = torch.softmax(mask_logits(scores, mask.unsqueeze(-1)), dim=1)  # B x T x K
        return torch.matmul(attention.transpose(1, 2), history), attention

    def prefix_forward(self, history: torch.Tensor, mask: torch.Tensor,
                       context: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward`'s interests of every prefix at once: for each position j, the heads
        over positions 0 .. j only (what ``forward`` gives for the history cut after j).

        Shapes: ``B x T x d``, ``B x T`` -> ``B x T x K x d`` (prefix j at index j)."""
        length = history.size(1)
        causal = torch.ones(length, length, dtype=torch.bool, device=history.device).tril()  # j x t: t <= j
        keep = causal.unsqueeze(0) & mask.unsqueeze(1)  # B x j x t
        scores = self.scores(history, context).unsqueeze(1)  # B x 1 x T x K
        attention = torch.softmax(mask_logits(scores, keep.unsqueeze(-1)), dim=2)  # B x j x T x K
        return torch.einsum("bjtk,btd->bjkd", attention, history)


class PositionMaps(nn.Module):
    """ComiRec-DR's bilinear maps of the official code (``bilinear_type=2``): a ``K*d x d``
    map per history position t, the K votes of the item at t being ``W_t e_t``. Initialised
    N(0, 1) as there.

    Shapes: ``B x T x d`` -> ``B x T x K x d``.
    """

    def __init__(self, max_length: int, embedding_size: int, n_interests: int):
        super().__init__()
        self.n_interests = n_interests
        self.weight = nn.Parameter(torch.randn(max_length, n_interests * embedding_size, embedding_size))

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        batch_size, length, d = history.shape
        votes = torch.einsum("tod,btd->bto", self.weight[:length], history)  # B x T x K*d
        return votes.view(batch_size, length, self.n_interests, d)


def profile_refinement(capsules: torch.Tensor, profile: torch.Tensor, per_field: torch.Tensor, refinement: MLP,
                       field_relevance: MLP | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """UMI's interest refinement (Eq 7-9): each interest v_k with the profile,
    ``MLP([sum_c d_kc e_c ; v_k])`` where ``d_k = field_relevance([e_u ; v_k])`` weighs the
    profile fields per interest (IR), or ``MLP([e_u ; v_k])`` with the same, static profile
    for every interest (``field_relevance`` None: UMI w/o IR).

    Shapes: ``capsules`` ``B x K x d``, ``profile`` ``B x C*d_f``, ``per_field``
    ``B x C x d_f`` -> ``B x K x out`` and the field weights ``B x K x C`` (None without IR).
    """
    if field_relevance is None:
        return refinement.forward_shared(capsules, profile, shared_first=True), None
    field_weights = field_relevance.forward_shared(capsules, profile, shared_first=True)  # B x K x C
    weighted = (field_weights.unsqueeze(-1) * per_field.unsqueeze(1)).flatten(2)  # B x K x C*d_f
    return refinement(torch.cat([weighted, capsules], dim=-1)), field_weights
