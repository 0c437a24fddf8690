r"""UMI
################################################

Reference:
    Zheng Chai et al. "User-Aware Multi-Interest Learning for Candidate Matching in
    Recommenders." In SIGIR 2022.

Details the paper leaves open follow ``shared/docs/umi-spec.md`` (the authors' released
code as tie-breaker): per-interest maps are one bias-free ``d -> K*d`` layer, routing logits
start from N(0, sigma^2) and are replaced (not accumulated) each iteration, all routing
iterations but the last are stop-gradient, and the refinement MLP's hidden size is d/2.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from recbole_umi.model.base import MultiInterestRecommender, config_value
from recbole_umi.model.layers import MLP, dynamic_routing

__all__ = ["UMI"]


class UMI(MultiInterestRecommender):
    """User-aware multi-interest network: UGANet, dual-attention routing, interest refinement.

    Ablations (paper, Table 3): ``use_dar: False`` routes without the UGANet weights
    (a_i = 1); ``use_ir: False`` drops the per-interest field weights d_k, so every
    interest is refined with the same, static profile (``o_k = MLP([e_u ; v_k])``);
    ``harder_negatives: False`` trains with Eq 10-11.
    """

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d, n_fields = self.embedding_size, len(self.profile.fields)
        profile_size = self.profile.output_size
        attention_hidden = config_value(config, "attention_hidden_size", int, minimum=1)
        self.routing_iterations = config_value(config, "routing_iterations", int, minimum=1)
        self.routing_init_std = config_value(config, "routing_init_std", float, minimum=0.0)
        self.use_dar = config_value(config, "use_dar", bool)
        self.use_ir = config_value(config, "use_ir", bool)

        self.uganet = MLP(d + profile_size, attention_hidden, 1, nn.Sigmoid())
        self.interest_maps = nn.Linear(d, self.n_interests * d, bias=False)
        self.field_relevance = MLP(profile_size + d, attention_hidden, n_fields, nn.Sigmoid())
        self.refinement = MLP(
            profile_size + d, config_value(config, "refine_hidden_size", int, minimum=1), d
        )
        self.register_eval_routing_logits(self.routing_init_std)
        self.apply(self._init_weights)

    def item_attention(self, history: torch.Tensor, profile: torch.Tensor) -> torch.Tensor:
        """UGANet (Eq 2): a_i from ``[e_i ; e_u]``; ``B x T x d``, ``B x d_u`` -> ``B x T``."""
        profile = profile.unsqueeze(1).expand(-1, history.size(1), -1)
        return self.uganet(torch.cat([history, profile], dim=-1)).squeeze(-1)

    def refine(self, capsules: torch.Tensor, profile: torch.Tensor, per_field: torch.Tensor) -> torch.Tensor:
        """Interest refinement (Eq 7-9): ``B x K x d`` capsules -> ``B x K x d`` interests."""
        profile = profile.unsqueeze(1).expand(-1, self.n_interests, -1)  # B x K x d_u
        if self.use_ir:
            field_weights = self.field_relevance(torch.cat([profile, capsules], dim=-1))  # B x K x C
            profile = (field_weights.unsqueeze(-1) * per_field.unsqueeze(1)).flatten(2)
        return self.refinement(torch.cat([profile, capsules], dim=-1))

    def forward(self, interaction) -> torch.Tensor:
        history, mask = self.history(interaction)
        batch_size, length, d = history.shape
        profile, per_field = self.profile(interaction)
        attention = self.item_attention(history, profile) if self.use_dar else None
        votes = self.interest_maps(history).view(batch_size, length, self.n_interests, d)
        capsules = dynamic_routing(
            votes,
            mask,
            self.initial_routing_logits(batch_size, length, self.routing_init_std),
            self.routing_iterations,
            item_weights=attention,
        )
        return self.refine(capsules, profile, per_field)
