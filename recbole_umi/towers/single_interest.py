r"""Single-interest towers of the paper's Table 2 and SASRec (K = 1; scores need no max).

- ``ProfileDSSMTower``: Huang et al. "Learning Deep Structured Semantic Models for Web Search
  using Clickthrough Data." CIKM 2013, as a matching two-tower model: the user tower is an
  MLP over the profile only, the item tower an MLP over the item embedding.
- ``YoutubeDNNTower``: Covington et al. "Deep Neural Networks for YouTube Recommendations."
  RecSys 2016: mean of the history item embeddings, concatenated with the profile, MLP.
- ``PopularityTower``: every user gets the items by training count, the floor of the
  cold-start curves (docs/protocol.md).
- ``SASRecTower``: Kang and McAuley. "Self-Attentive Sequential Recommendation." ICDM 2018:
  SASRec's causal transformer encoder (:mod:`recbole_umi.towers.transformer`) as the user
  tower, sharing the item table, so that SASRec trains with the plugin's objectives.

Submodule names are those of the checkpoints written before the towers had their own
package (``user_tower``, ``item_tower``, ``encoder``), so that those checkpoints load.
"""

from __future__ import annotations

import torch

from recbole_umi.towers.base import UserTower, xavier_init
from recbole_umi.towers.layers import MLP
from recbole_umi.towers.schema import DataSchema
from recbole_umi.towers.settings import (
    PopularitySettings,
    ProfileDSSMSettings,
    SASRecSettings,
    YoutubeDNNSettings,
)
from recbole_umi.towers.transformer import CausalTransformerEncoder

__all__ = ["SingleInterestTower", "ProfileDSSMTower", "YoutubeDNNTower", "SASRecTower", "PopularityTower", "RankScores"]


class SingleInterestTower(UserTower):
    routes_items = False


class ProfileDSSMTower(SingleInterestTower):
    """Two towers: user = MLP(profile), item = MLP(item embedding)."""

    settings_class = ProfileDSSMSettings

    def __init__(self, settings: ProfileDSSMSettings, schema: DataSchema):
        super().__init__(settings, schema)
        d, hidden = settings.embedding_size, settings.mlp_hidden_size
        self.user_tower = MLP(self.profile.output_size, hidden, d)
        self.item_tower = MLP(d, hidden, d)
        self.apply(xavier_init)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, None]:
        profile, _ = self.profile(batch)
        return self.user_tower(profile).unsqueeze(1), None

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The item tower's output for every item, or for the ids ``items`` only."""
        return self.item_tower(super().item_embeddings(items))


class YoutubeDNNTower(SingleInterestTower):
    """User = MLP([mean of history item embeddings ; profile])."""

    settings_class = YoutubeDNNSettings

    def __init__(self, settings: YoutubeDNNSettings, schema: DataSchema):
        super().__init__(settings, schema)
        d = settings.embedding_size
        self.user_tower = MLP(d + self.profile.output_size, settings.mlp_hidden_size, d)
        self.apply(xavier_init)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, None]:
        history, mask = self.history(batch)
        weights = mask.to(history.dtype).unsqueeze(-1)
        pooled = (history * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        profile, _ = self.profile(batch)
        return self.user_tower(torch.cat([pooled, profile], dim=-1)).unsqueeze(1), None


class SASRecTower(SingleInterestTower):
    """User = SASRec's encoder over the history (its output at the last position); items =
    the item table, which the encoder reads too. No profile."""

    settings_class = SASRecSettings
    uses_profile = False

    def __init__(self, settings: SASRecSettings, schema: DataSchema):
        super().__init__(settings, schema)
        self.encoder = CausalTransformerEncoder(settings, schema.n_items, schema.max_history_length)
        self.encoder.share_item_table(self.item_embedding)  # one table for the encoder's input and the scores

    causal = True

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, None]:
        output = self.encoder(batch[self.schema.history_field], batch[self.schema.history_length_field])  # B x d
        return output.unsqueeze(1), None

    def prefix_interests(self, batch) -> torch.Tensor:
        """The encoder's state at each position: the user after each prefix, ``B x T x 1 x d``."""
        return self.encoder.states(batch[self.schema.history_field]).unsqueeze(2)


class RankScores(torch.nn.Module):
    """Each item's rank by training count as a one-dimensional vector (the best item 1, the
    next (n - 1) / n, ...; ties by item id, the lower first; the padding item last), so that
    no two items tie anywhere (full sort, a faiss index, a reloaded model)."""

    def __init__(self, n_items: int):
        super().__init__()
        self.register_buffer("rank_scores", torch.zeros(n_items, 1))
        # the trainer's optimizer wants a parameter; the zero loss never moves it
        self.step = torch.nn.Parameter(torch.zeros(1))

    def set_counts(self, counts: torch.Tensor) -> None:
        """Rank the items by ``counts`` (``n_items`` training counts; row 0 is padding)."""
        n_items = len(counts)
        counts = counts.double().clone()
        counts[0] = -1.0  # the padding item comes last
        order = sorted(range(n_items), key=lambda item: (-counts[item].item(), item))
        scores = torch.zeros(n_items)
        scores[order] = torch.arange(n_items, 0, -1, dtype=torch.float32) / n_items
        with torch.no_grad():
            self.rank_scores.copy_(scores.unsqueeze(1))


class PopularityTower(SingleInterestTower):
    """Every user: one interest ``[1]`` against each item's rank score (:class:`RankScores`),
    so scoring, retrieval and export work as for any other tower. It reads neither history
    nor profile. The counts come from the training data (:meth:`RankScores.set_counts`, the
    adapter) or with the weights (serving)."""

    settings_class = PopularitySettings
    uses_profile = False
    reads_history = False

    def __init__(self, settings: PopularitySettings, schema: DataSchema):
        super().__init__(settings, schema)
        self.popularity = RankScores(schema.n_items)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, None]:
        batch_size = len(batch[self.schema.history_field])
        return self.popularity.rank_scores.new_ones(batch_size, 1, 1), None

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``n_items x 1`` (or ``S x 1`` for ids ``items``): each item's rank score."""
        scores = self.popularity.rank_scores
        return scores if items is None else scores[items]
