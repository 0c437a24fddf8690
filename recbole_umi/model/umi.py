r"""UMI
################################################

Reference:
    Zheng Chai et al. "User-Aware Multi-Interest Learning for Candidate Matching in
    Recommenders." In SIGIR 2022.

The details the paper leaves open are decided in ``docs/design.md``: per-interest maps are
one bias-free ``d -> K*d`` layer, routing logits start from N(0, sigma^2) and are replaced
(not accumulated) each iteration, all routing iterations but the last are stop-gradient,
and the refinement MLP's hidden size is 32 on MovieLens, as the paper states.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from recbole_umi.model.base import MultiInterestRecommender
from recbole_umi.model.layers import MLP, RoutingLogits, dynamic_routing
from recbole_umi.settings import setting

__all__ = ["UMI"]


class UMI(MultiInterestRecommender):
    """User-aware multi-interest network: UGANet, dual-attention routing, interest refinement.

    Ablations (paper, Table 3): ``use_dar: False`` routes without the UGANet weights
    (a_i = 1) and builds no UGANet; ``use_ir: False`` builds no field-relevance MLP and
    refines every interest with the same, static profile (``o_k = MLP([e_u ; v_k])``);
    ``harder_negatives: False`` trains with Eq 10-11.
    """

    variant_settings = ("harder_negatives", "use_dar", "use_ir")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d, n_fields = self.embedding_size, len(self.profile.fields)
        profile_size = self.profile.output_size
        attention_hidden = setting(config, "attention_hidden_size")
        self.routing_iterations = setting(config, "routing_iterations")
        self.use_dar = setting(config, "use_dar")
        self.use_ir = setting(config, "use_ir")

        self.uganet = MLP(d + profile_size, attention_hidden, 1, nn.Sigmoid()) if self.use_dar else None
        self.interest_maps = nn.Linear(d, self.n_interests * d, bias=False)
        self.routing_logits = RoutingLogits(
            self.max_seq_length, self.n_interests, setting(config, "routing_init_std")
        )
        self.field_relevance = (
            MLP(profile_size + d, attention_hidden, n_fields, nn.Sigmoid()) if self.use_ir else None
        )
        self.refinement = MLP(profile_size + d, setting(config, "refine_hidden_size"), d)
        self.apply(self._init_weights)

    def item_attention(self, history: torch.Tensor, profile: torch.Tensor) -> torch.Tensor:
        """UGANet (Eq 2): a_i from ``[e_i ; e_u]``; ``B x T x d``, ``B x d_u`` -> ``B x T``."""
        return self.uganet.forward_shared(history, profile).squeeze(-1)

    def refine(self, capsules: torch.Tensor, profile: torch.Tensor, per_field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Interest refinement (Eq 7-9): ``B x K x d`` capsules -> ``B x K x d`` interests,
        and the field weights d_k of Eq 7, ``B x K x C`` (None without IR)."""
        if not self.use_ir:  # the same profile for every interest
            return self.refinement.forward_shared(capsules, profile, shared_first=True), None
        field_weights = self.field_relevance.forward_shared(capsules, profile, shared_first=True)  # B x K x C
        weighted = (field_weights.unsqueeze(-1) * per_field.unsqueeze(1)).flatten(2)  # B x K x d_u
        return self.refinement(torch.cat([weighted, capsules], dim=-1)), field_weights

    def explain(self, interaction) -> dict[str, torch.Tensor | None]:
        """What UMI computes on the way to the interests, for interpretation (the paper's
        Figures 3b to 5): ``interests`` (``B x K x d``), ``item_attention`` (the UGANet
        weight a_i of each history item, Eq 2, ``B x T``; None without DAR), ``routing``
        (``B x T x K``) and ``field_weights`` (d_k of Eq 7 per interest and profile field,
        ``B x K x C``; None without IR)."""
        history, mask = self.history(interaction)
        batch_size, length, d = history.shape
        profile, per_field = self.profile(interaction)
        attention = self.item_attention(history, profile) if self.use_dar else None
        votes = self.interest_maps(history).view(batch_size, length, self.n_interests, d)
        capsules, routing = dynamic_routing(
            votes,
            mask,
            self.routing_logits(batch_size, length),
            self.routing_iterations,
            item_weights=attention,
        )
        interests, field_weights = self.refine(capsules, profile, per_field)
        if attention is not None:
            attention = attention * mask  # padding has no weight
        return {"interests": interests, "item_attention": attention, "routing": routing, "field_weights": field_weights}

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        parts = self.explain(interaction)
        return parts["interests"], parts["routing"]
