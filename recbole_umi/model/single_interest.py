r"""Single-interest baselines of the paper's Table 2 (K = 1; scores need no max).

- ``ProfileDSSM``: Huang et al. "Learning Deep Structured Semantic Models for Web Search
  using Clickthrough Data." CIKM 2013, as a matching two-tower model: the user tower is an
  MLP over the profile only, the item tower an MLP over the item embedding. (Not RecBole's
  context-aware ``DSSM``, a CTR model; hence the name.)
- ``YoutubeDNN``: Covington et al. "Deep Neural Networks for YouTube Recommendations."
  RecSys 2016: mean of the history item embeddings, concatenated with the profile, MLP.
- ``SASRecMatching``: Kang and McAuley. "Self-Attentive Sequential Recommendation." ICDM
  2018: RecBole's own SASRec encoder as the user tower, trained with the plugin's losses
  (sampled softmax, harder negatives, popularity sampling, ...) instead of RecBole's CE or
  BPR, so that SASRec can be compared with the multi-interest models objective by
  objective. ``--model=SASRec`` stays RecBole's model.
"""

from __future__ import annotations

import torch
from recbole.model.sequential_recommender.sasrec import SASRec

from recbole_umi.model.base import MultiInterestRecommender
from recbole_umi.model.layers import MLP
from recbole_umi.settings import Setting, setting

__all__ = ["ProfileDSSM", "YoutubeDNN", "SASRecMatching"]


class _SingleInterest(MultiInterestRecommender):
    routes_items = False
    # With one interest, harder negatives score every candidate with the interest the
    # positive uses anyway (Eq 12-13 equal Eq 10-11): +HN / -HN would name the base model.
    variant_settings = ()
    setting_restrictions = {"n_interests": Setting(int, low=1, high=1, note="this is a single-interest model")}


class ProfileDSSM(_SingleInterest):
    """Two towers: user = MLP(profile), item = MLP(item embedding)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d, hidden = self.embedding_size, setting(config, "mlp_hidden_size")
        self.user_tower = MLP(self.profile.output_size, hidden, d)
        self.item_tower = MLP(d, hidden, d)
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
        self.user_tower = MLP(d + self.profile.output_size, setting(config, "mlp_hidden_size"), d)
        self.apply(self._init_weights)

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, None]:
        history, mask = self.history(interaction)
        weights = mask.to(history.dtype).unsqueeze(-1)
        pooled = (history * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        profile, _ = self.profile(interaction)
        return self.user_tower(torch.cat([pooled, profile], dim=-1)).unsqueeze(1), None


class _EncoderConfig:
    """The config as RecBole's SASRec reads it: its hidden size is the plugin's d, and its
    own loss (built but never used) is CE, since SASRec refuses any other name."""

    def __init__(self, config, embedding_size: int):
        self._config = config
        self._overrides = {"hidden_size": embedding_size, "loss_type": "CE"}

    def __getitem__(self, key):
        return self._overrides[key] if key in self._overrides else self._config[key]

    def __contains__(self, key):
        return key in self._overrides or key in self._config


class SASRecMatching(_SingleInterest):
    """User = RecBole's SASRec encoder over the history (its output at the last position);
    items = the shared item embedding, which the encoder reads too. No profile."""

    uses_profile = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.encoder = SASRec(_EncoderConfig(config, self.embedding_size), dataset)
        # one item table for the encoder's input and the scores, initialised as SASRec's
        self.encoder.item_embedding = self.item_embedding
        self.encoder._init_weights(self.item_embedding)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        del self.encoder.loss_fct  # RecBole's loss: the plugin's loss_fct trains this model

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, None]:
        output = self.encoder(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])  # B x d
        return output.unsqueeze(1), None
