"""The single-interest baselines registered with RecBole (K = 1): adapters of the towers in
:mod:`recbole_umi.towers.single_interest`.

- ``ProfileDSSM``: the paper's "DSSM" row, a profile-only user tower and an MLP item tower
  (not RecBole's context-aware ``DSSM``, a CTR model; hence the name).
- ``YoutubeDNN``: mean-pooled history and profile, MLP.
- ``SASRecMatching``: SASRec's encoder as the user tower, trained with the plugin's losses
  (sampled softmax, harder negatives, popularity sampling, ...) instead of RecBole's CE or
  BPR; ``--model=SASRec`` stays RecBole's model.
"""

from __future__ import annotations

from recbole_umi.model.base import MatchingRecommender
from recbole_umi.towers.single_interest import ProfileDSSMTower, SASRecTower, YoutubeDNNTower

__all__ = ["ProfileDSSM", "YoutubeDNN", "SASRecMatching"]


class _SingleInterest(MatchingRecommender):
    # With one interest, harder negatives score every candidate with the interest the
    # positive uses anyway (Eq 12-13 equal Eq 10-11): +HN / -HN would name the base model.
    variant_settings = ()


class ProfileDSSM(_SingleInterest):
    """Two towers: user = MLP(profile), item = MLP(item embedding)."""

    tower_class = ProfileDSSMTower


class YoutubeDNN(_SingleInterest):
    """User = MLP([mean of history item embeddings ; profile])."""

    tower_class = YoutubeDNNTower


class SASRecMatching(_SingleInterest):
    """User = SASRec's encoder over the history; items = the item table it reads too."""

    tower_class = SASRecTower
