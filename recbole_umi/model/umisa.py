"""UMISA, this project's order-aware, user-aware multi-interest model, registered with
RecBole: the adapter of :class:`recbole_umi.towers.umisa.UMISATower` (docs/design.md)."""

from __future__ import annotations

from recbole_umi.model.base import MatchingRecommender
from recbole_umi.towers.umisa import UMISATower

__all__ = ["UMISA"]


class UMISA(MatchingRecommender):
    """SASRec's causal encoder, K interests extracted with the profile steering, refined with
    the profile. Ablations: ``profile_steering: none`` (or ``gate``), ``recent_interest:
    False``, ``refine_interests: False`` (with ``profile_steering: none``: no profile at
    all, UMISA-PROFILE), ``use_ir: False`` (UMISA-IR), ``harder_negatives: False`` (UMISA-HN)."""

    tower_class = UMISATower
    variant_settings = ("harder_negatives", "use_ir", "profile_steering", "refine_interests")
