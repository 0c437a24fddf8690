"""MIND (Li et al., CIKM'19) registered with RecBole: the adapter of
:class:`recbole_umi.towers.mind.MINDTower`; ``harder_negatives: True`` gives MIND+HN."""

from __future__ import annotations

from recbole_umi.model.base import MatchingRecommender
from recbole_umi.towers.mind import MINDTower

__all__ = ["MIND"]


class MIND(MatchingRecommender):
    """Behaviour-to-interest routing with a shared map, profile concatenated to each capsule."""

    tower_class = MINDTower
