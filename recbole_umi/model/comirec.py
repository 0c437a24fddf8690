r"""ComiRec
################################################

Reference:
    Yukuo Cen et al. "Controllable Multi-Interest Framework for Recommendation." In KDD 2020.

Two interest extractors, as in the official code (``docs/design.md``):

- ``DR`` (dynamic routing): per-interest maps, routing logits start at zero and
  accumulate, softmax over the interests, stop-gradient on all but the last iteration.
  This is the paper's "ComiRec" row.
- ``SA`` (self-attentive): ``softmax_T(W2 tanh(W1 H))``, one head per interest.

ComiRec uses no user profile. Its controllable aggregation module (diversity re-ranking
at serving time) is not part of training and is not implemented; scores are max over
interests like every other model here. ``harder_negatives: True`` gives ComiRec+HN.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from recbole_umi.model.base import MultiInterestRecommender
from recbole_umi.model.layers import SelfAttentiveExtractor, dynamic_routing
from recbole_umi.settings import Setting, setting

__all__ = ["ComiRec", "ComiRecDR", "ComiRecSA"]


class ComiRec(MultiInterestRecommender):
    """ComiRec with the extractor chosen by ``comirec_variant`` (``DR`` or ``SA``)."""

    uses_profile = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size
        self.variant = setting(config, "comirec_variant")  # ComiRecDR / ComiRecSA: setting_restrictions
        if self.variant == "DR":
            self.routing_iterations = setting(config, "routing_iterations")
            self.interest_maps = nn.Linear(d, self.n_interests * d, bias=False)
        else:
            hidden = setting(config, "attention_hidden_size")
            self.extractor = SelfAttentiveExtractor(d, hidden, self.n_interests)
        self.apply(self._init_weights)

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """DR: the routing of dynamic routing; SA: the attention of each head over the items."""
        history, mask = self.history(interaction)
        if self.variant == "SA":
            return self.extractor(history, mask)
        batch_size, length, d = history.shape
        votes = self.interest_maps(history).view(batch_size, length, self.n_interests, d)
        zeros = history.new_zeros(batch_size, length, self.n_interests)
        return dynamic_routing(votes, mask, zeros, self.routing_iterations, accumulate=True)


class ComiRecDR(ComiRec):
    """ComiRec with dynamic routing (the paper's "ComiRec" row)."""

    setting_restrictions = {
        "comirec_variant": Setting(str, choices=("DR",), note="fixed for ComiRecDR; use --model=ComiRec to choose the variant by config")
    }


class ComiRecSA(ComiRec):
    """ComiRec with the self-attentive extractor."""

    setting_restrictions = {
        "comirec_variant": Setting(str, choices=("SA",), note="fixed for ComiRecSA; use --model=ComiRec to choose the variant by config")
    }
