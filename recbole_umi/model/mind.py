r"""MIND
################################################

Reference:
    Chao Li et al. "Multi-Interest Network with Dynamic Routing for Recommendation at
    Tmall." In CIKM 2019.

As decided in ``docs/design.md``: one shared bilinear map for all interests,
routing logits from N(0, sigma^2) that accumulate (``b += u . v``) over 3 iterations with a
softmax over the interests, the profile concatenated to every capsule, then an MLP. The
training readout is label-aware attention with power ``readout_power`` (``inf``: the
positive's best interest, Eq 10); ``harder_negatives: True`` gives the paper's MIND+HN.
MIND's per-user dynamic number of interests is not used: every user gets K interests.
"""

from __future__ import annotations

import torch

from recbole_umi.model.base import MultiInterestRecommender
from recbole_umi.model.layers import MLP, RoutingLogits, dynamic_routing
from recbole_umi.settings import setting

__all__ = ["MIND"]


class MIND(MultiInterestRecommender):
    """Behaviour-to-interest routing with a shared map, profile concatenated to each capsule."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size
        self.routing_iterations = setting(config, "routing_iterations")
        self.shared_map = torch.nn.Linear(d, d, bias=False)
        self.routing_logits = RoutingLogits(
            self.max_seq_length, self.n_interests, setting(config, "routing_init_std")
        )
        self.interest_mlp = MLP(d + self.profile.output_size, setting(config, "mlp_hidden_size"), d)
        self.apply(self._init_weights)

    def readout_power(self, config) -> float:
        """p of the label-aware attention readout (``readout_power``; ``inf`` is Eq 10)."""
        return setting(config, "readout_power")

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        history, mask = self.history(interaction)
        batch_size, length, d = history.shape
        votes = self.shared_map(history).unsqueeze(2).expand(-1, -1, self.n_interests, -1)
        capsules, routing = dynamic_routing(
            votes,
            mask,
            self.routing_logits(batch_size, length),
            self.routing_iterations,
            accumulate=True,
        )
        profile, _ = self.profile(interaction)
        return self.interest_mlp.forward_shared(capsules, profile), routing
