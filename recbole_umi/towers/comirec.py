r"""ComiRec's user tower.

Reference:
    Yukuo Cen et al. "Controllable Multi-Interest Framework for Recommendation." In KDD 2020.

Two interest extractors, as in the official code (``docs/design.md``):

- ``DR`` (dynamic routing): K bilinear maps per history position, as the official code's
  default (``bilinear_type=2``, weights ``T x K*d x d``, ``comirec_maps: per_position``;
  ``shared``: one ``d -> K*d`` map for every position, what this project ran before
  2026-12-03), routing logits start at zero and accumulate, softmax over the interests,
  stop-gradient on all but the last iteration. This is the paper's "ComiRec" row.
- ``SA`` (self-attentive): ``softmax_T(W2 tanh(W1 (H + P) + b1) + b2)``, one head per
  interest, of hidden size ``attention_hidden_size`` (4d in the official code), with the
  official code's learned position embedding ``P`` (``position_embedding``) and biases.

What differs from the official code: the position maps' and the position embedding's
initialisation draws (same distributions, torch's generator); the item table's and SA's
layers' weights drawn Xavier-normal where TensorFlow draws glorot-uniform (the same
variance); the ``shared`` map has no bias (not claimed to be the official
``bilinear_type=1``); and the loss (the plugin's shared objectives instead of TensorFlow's
sampled softmax). SA's ``attention_hidden_size`` is its own setting, not tied to 4d.

ComiRec uses no user profile. Its controllable aggregation module (diversity re-ranking at
serving time) is not part of training (``recbole_umi.retrieval.diversify``); scores are max
over interests like every other tower here.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from recbole_umi.towers.base import UserTower, xavier_init
from recbole_umi.towers.layers import MappedVotes, PositionMaps, SelfAttentiveExtractor, dynamic_routing
from recbole_umi.towers.schema import DataSchema
from recbole_umi.towers.settings import ComiRecSettings

__all__ = ["ComiRecTower"]


class ComiRecTower(UserTower):
    """ComiRec with the extractor ``comirec_variant`` names (``DR`` or ``SA``)."""

    settings_class = ComiRecSettings
    uses_profile = False

    def __init__(self, settings: ComiRecSettings, schema: DataSchema):
        super().__init__(settings, schema)
        d = settings.embedding_size
        self.variant = settings.comirec_variant
        if self.variant == "DR":
            self.routing_iterations = settings.routing_iterations
            if settings.comirec_maps == "shared":
                self.interest_maps = nn.Linear(d, settings.n_interests * d, bias=False)
        else:
            length = schema.max_history_length if settings.position_embedding else None
            self.extractor = SelfAttentiveExtractor(d, settings.attention_hidden_size, settings.n_interests, length)
        self.apply(xavier_init)
        if self.variant == "DR" and settings.comirec_maps == "per_position":  # N(0, 1), not Xavier: as the official
            self.position_maps = PositionMaps(schema.max_history_length, d, settings.n_interests)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """DR: the routing of dynamic routing; SA: the attention of each head over the items."""
        history, mask = self.history(batch)
        if self.variant == "SA":
            return self.extractor(history, mask)
        batch_size, length, _ = history.shape
        if hasattr(self, "position_maps"):
            votes = self.position_maps(history)  # B x T x K x d
        else:
            votes = MappedVotes.of_linear(history, self.interest_maps, self.n_interests)
        zeros = history.new_zeros(batch_size, length, self.n_interests)
        return dynamic_routing(votes, mask, zeros, self.routing_iterations, accumulate=True)
