r"""ComiRec
################################################

Reference:
    Yukuo Cen et al. "Controllable Multi-Interest Framework for Recommendation." In KDD 2020.

Two interest extractors, as in the official code (``shared/docs/umi-spec.md``):

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

from recbole_umi.model.base import ModelConfigError, MultiInterestRecommender, config_value
from recbole_umi.model.layers import SelfAttentiveExtractor, dynamic_routing

__all__ = ["ComiRec", "ComiRecDR", "ComiRecSA", "COMIREC_VARIANTS"]

COMIREC_VARIANTS = ("DR", "SA")


class ComiRec(MultiInterestRecommender):
    """ComiRec with the extractor chosen by ``comirec_variant`` (``DR`` or ``SA``)."""

    uses_profile = False
    fixed_variant: str | None = None  # set by ComiRecDR / ComiRecSA

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size
        self.variant = config_value(config, "comirec_variant", str, choices=COMIREC_VARIANTS)
        if self.fixed_variant not in (None, self.variant):
            raise ModelConfigError(
                f"{type(self).__name__} is ComiRec with comirec_variant: {self.fixed_variant}, but the config "
                f"sets {self.variant!r}; use --model=ComiRec to choose the variant by config"
            )
        if self.variant == "DR":
            self.routing_iterations = config_value(config, "routing_iterations", int, minimum=1)
            self.interest_maps = nn.Linear(d, self.n_interests * d, bias=False)
        else:
            hidden = config_value(config, "attention_hidden_size", int, minimum=1)
            self.extractor = SelfAttentiveExtractor(d, hidden, self.n_interests)
        self.apply(self._init_weights)

    def forward(self, interaction) -> torch.Tensor:
        history, mask = self.history(interaction)
        if self.variant == "SA":
            return self.extractor(history, mask)
        batch_size, length, d = history.shape
        votes = self.interest_maps(history).view(batch_size, length, self.n_interests, d)
        zeros = history.new_zeros(batch_size, length, self.n_interests)
        return dynamic_routing(votes, mask, zeros, self.routing_iterations, accumulate=True)


class ComiRecDR(ComiRec):
    """ComiRec with dynamic routing (the paper's "ComiRec" row)."""

    fixed_variant = "DR"


class ComiRecSA(ComiRec):
    """ComiRec with the self-attentive extractor."""

    fixed_variant = "SA"
