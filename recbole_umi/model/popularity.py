r"""Popularity: the floor every cold-start curve needs, the score of knowing nothing about
the user (the adapter of :class:`recbole_umi.towers.single_interest.PopularityTower`).

Every user gets the same ranking: the items by their number of training targets
(:func:`recbole_umi.model.base.training_counts`), ties broken by item id (the lower first).
It reads neither history nor profile, so it answers at ``eval_history_items: 0`` too. Its
"training" is a zero loss (RecBole's trainer wants a parameter to step): the counts are fixed when the model is built, and the epochs the run's
settings give (about a second each on ml-1m) change nothing.
"""

from __future__ import annotations

import torch

from recbole_umi.model.base import training_counts
from recbole_umi.model.single_interest import _SingleInterest
from recbole_umi.towers.single_interest import PopularityTower

__all__ = ["Popularity"]


class Popularity(_SingleInterest):
    """Every user: the items by their number of training targets."""

    tower_class = PopularityTower
    learned = False  # nothing to train: the contract tests of learning leave it out

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.tower.popularity.set_counts(training_counts(dataset, self.n_items))

    def calculate_loss(self, interaction) -> torch.Tensor:
        return self.tower.popularity.step.sum() * 0.0
