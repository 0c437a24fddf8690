r"""Single-interest baselines of the paper's Table 2 (K = 1; scores need no max).

- ``ProfileDSSM``: Huang et al. "Learning Deep Structured Semantic Models for Web Search
  using Clickthrough Data." CIKM 2013, as a matching two-tower model: the user tower is an
  MLP over the profile only, the item tower an MLP over the item embedding. (Not RecBole's
  context-aware ``DSSM``, a CTR model; hence the name.)
- ``YoutubeDNN``: Covington et al. "Deep Neural Networks for YouTube Recommendations."
  RecSys 2016: mean of the history item embeddings, concatenated with the profile, MLP.
"""

from __future__ import annotations

import torch

from recbole_umi.model.base import MultiInterestRecommender
from recbole_umi.model.layers import MLP
from recbole_umi.settings import Setting, setting

__all__ = ["ProfileDSSM", "YoutubeDNN"]


class _SingleInterest(MultiInterestRecommender):
    routes_items = False
    # With one interest, harder negatives score every candidate with the interest the
    # positive uses anyway (Eq 12-13 equal Eq 10-11): +HN / -HN would name the base model.
    variant_settings = ()
    setting_restrictions = {"n_interests": Setting(int, low=1, high=1, note="this is a single-interest model")}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)  # n_interests is 1: setting_restrictions, checked in Config
        self.mlp_hidden_size = setting(config, "mlp_hidden_size")


class ProfileDSSM(_SingleInterest):
    """Two towers: user = MLP(profile), item = MLP(item embedding)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size
        self.user_tower = MLP(self.profile.output_size, self.mlp_hidden_size, d)
        self.item_tower = MLP(d, self.mlp_hidden_size, d)
        self.apply(self._init_weights)

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, None]:
        profile, _ = self.profile(interaction)
        return self.user_tower(profile).unsqueeze(1), None

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The item tower's output for every item, or for the ids ``items`` only."""
        return self.item_tower(super().item_embeddings(items))


class YoutubeDNN(_SingleInterest):
    """User = MLP([mean of history item embeddings ; profile])."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size
        self.user_tower = MLP(d + self.profile.output_size, self.mlp_hidden_size, d)
        self.apply(self._init_weights)

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, None]:
        history, mask = self.history(interaction)
        weights = mask.to(history.dtype).unsqueeze(-1)
        pooled = (history * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        profile, _ = self.profile(interaction)
        return self.user_tower(torch.cat([pooled, profile], dim=-1)).unsqueeze(1), None
