"""UMI (Chai et al., SIGIR'22) registered with RecBole: the adapter of
:class:`recbole_umi.towers.umi.UMITower`, where the model is (docs/design.md)."""

from __future__ import annotations

import torch

from recbole_umi.model.base import MatchingRecommender
from recbole_umi.towers.umi import UMITower

__all__ = ["UMI"]


class UMI(MatchingRecommender):
    """User-aware multi-interest network: UGANet, dual-attention routing, interest refinement.

    Ablations (paper, Table 3): ``use_dar: False`` (no UGANet), ``use_ir: False`` (no
    field-relevance MLP), ``harder_negatives: False`` (Eq 10-11).
    """

    tower_class = UMITower
    variant_settings = ("harder_negatives", "use_dar", "use_ir")

    def explain(self, interaction) -> dict[str, torch.Tensor | None]:
        """The tower's intermediates for interpretation (:meth:`UMITower.explain`)."""
        return self.tower.explain(interaction)
