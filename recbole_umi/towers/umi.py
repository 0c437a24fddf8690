r"""UMI's user tower.

Reference:
    Zheng Chai et al. "User-Aware Multi-Interest Learning for Candidate Matching in
    Recommenders." In SIGIR 2022.

The details the paper leaves open are decided in ``docs/design.md``: per-interest maps are
one bias-free ``d -> K*d`` layer, routing logits start from N(0, sigma^2) and are replaced
(not accumulated) each iteration, all routing iterations but the last are stop-gradient,
and the refinement MLP's hidden size is 32 on MovieLens, as the paper states.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from recbole_umi.towers.base import UserTower, xavier_init
from recbole_umi.towers.layers import MLP, MappedVotes, RoutingLogits, dynamic_routing, profile_refinement
from recbole_umi.towers.ops import mapped_lookup
from recbole_umi.towers.schema import DataSchema
from recbole_umi.towers.settings import UMISettings

__all__ = ["UMITower", "UMISteps"]


@dataclass
class UMISteps:
    """What UMI computes on the way to the interests (shapes for B users, T positions, K
    interests, C profile fields).

    Attributes:
        interests: O_u, ``B x K x d``.
        item_attention: UGANet's a_i (Eq 2), ``B x T`` (None without DAR; padding not masked).
        routing: each history item's routing over the interests, ``B x T x K``.
        field_weights: d_k of Eq 7 per interest and field, ``B x K x C`` (None without IR).
        mask: ``B x T``, True for real history items.
    """

    interests: torch.Tensor
    item_attention: torch.Tensor | None
    routing: torch.Tensor
    field_weights: torch.Tensor | None
    mask: torch.Tensor


class UMITower(UserTower):
    """User-aware multi-interest network: UGANet, dual-attention routing, interest refinement.

    Ablations (paper, Table 3): ``use_dar: False`` routes without the UGANet weights
    (a_i = 1) and builds no UGANet; ``use_ir: False`` builds no field-relevance MLP and
    refines every interest with the same, static profile (``o_k = MLP([e_u ; v_k])``);
    ``harder_negatives: False`` (the objective's setting) trains with Eq 10-11.
    """

    settings_class = UMISettings

    def __init__(self, settings: UMISettings, schema: DataSchema):
        super().__init__(settings, schema)
        d, k, n_fields = settings.embedding_size, settings.n_interests, len(schema.profile)
        profile_size = self.profile.output_size
        hidden = settings.uganet_hidden_size
        self.routing_iterations = settings.routing_iterations
        self.use_dar = settings.use_dar
        self.use_ir = settings.use_ir
        # built in this order, which the seeded initial weights depend on
        self.uganet = MLP(d + profile_size, hidden, 1, nn.Sigmoid()) if self.use_dar else None
        self.interest_maps = nn.Linear(d, k * d, bias=False)
        self.routing_logits = RoutingLogits(schema.max_history_length, k, settings.routing_init_std)
        self.field_relevance = MLP(profile_size + d, hidden, n_fields, nn.Sigmoid()) if self.use_ir else None
        self.refinement = MLP(profile_size + d, settings.refine_hidden_size, d)
        self.apply(xavier_init)

    def item_attention(self, item_seq: torch.Tensor, profile: torch.Tensor) -> torch.Tensor:
        """UGANet (Eq 2): a_i from ``[e_i ; e_u]``, the first layer's share of e_i through the
        item table (``ops.mapped_lookup``); ``B x T`` history ids, ``B x d_u`` -> ``B x T``."""
        rows_part = mapped_lookup(self.item_embedding, item_seq, self.uganet.rows_weight(profile.size(-1)))
        return self.uganet.forward_rows_mapped(rows_part, profile).squeeze(-1)

    def refine(self, capsules: torch.Tensor, profile: torch.Tensor,
               per_field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Interest refinement (Eq 7-9): ``B x K x d`` capsules -> ``B x K x d`` interests,
        and the field weights d_k of Eq 7, ``B x K x C`` (None without IR)."""
        return profile_refinement(capsules, profile, per_field, self.refinement, self.field_relevance)

    def steps(self, batch) -> UMISteps:
        """The forward pass, every intermediate kept (:class:`UMISteps`)."""
        history, mask = self.history(batch)
        batch_size, length, _ = history.shape
        profile, per_field = self.profile(batch)
        attention = self.item_attention(batch[self.schema.history_field], profile) if self.use_dar else None
        votes = MappedVotes.of_linear(history, self.interest_maps, self.n_interests)
        capsules, routing = dynamic_routing(
            votes, mask, self.routing_logits(batch_size, length), self.routing_iterations, item_weights=attention
        )
        interests, field_weights = self.refine(capsules, profile, per_field)
        return UMISteps(interests, attention, routing, field_weights, mask)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        steps = self.steps(batch)
        return steps.interests, steps.routing

    def explain(self, batch) -> dict[str, torch.Tensor | None]:
        """What UMI computes on the way to the interests, for interpretation (the paper's
        Figures 3b to 5): ``interests`` (``B x K x d``), ``item_attention`` (the UGANet
        weight a_i of each history item, Eq 2, ``B x T``, 0 for padding; None without DAR),
        ``routing`` (``B x T x K``) and ``field_weights`` (d_k of Eq 7 per interest and
        profile field, ``B x K x C``; None without IR)."""
        steps = self.steps(batch)
        attention = steps.item_attention * steps.mask if steps.item_attention is not None else None
        return {"interests": steps.interests, "item_attention": attention, "routing": steps.routing,
                "field_weights": steps.field_weights}
