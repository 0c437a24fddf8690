r"""Popularity: the floor every cold-start curve needs, the score of knowing nothing about
the user.

Every user gets the same ranking: the items by their number of training interactions, ties
broken by item id (the lower first), scored by rank (the best item 1, the next (n - 1) / n,
...), so that no two items tie anywhere (full sort, a faiss index, a reloaded model). It
reads neither history nor profile, so it answers at ``eval_history_items: 0`` too. Its
"training" is a zero loss (RecBole's trainer wants a parameter to step): the counts are
fixed when the model is built, and the epochs the run's settings give (about a second each
on ml-1m) change nothing.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from recbole_umi.model.single_interest import _SingleInterest
from recbole_umi.settings import Setting

__all__ = ["Popularity"]


class Popularity(_SingleInterest):
    """Scores every item by its training count's rank, for every user: one interest ``[1]``
    against a one-dimensional item vector, so scoring, retrieval and export work as for any
    other model."""

    uses_profile = False
    reads_history = False
    learned = False  # nothing to train: the contract tests of learning leave it out
    setting_restrictions = {
        **_SingleInterest.setting_restrictions,
        "routing_regularization": Setting(float, low=0.0, high=0.0, note="Popularity routes nothing"),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        counts = torch.zeros(self.n_items)
        for item, count in dataset.item_counter.items():
            counts[item] = count
        counts[0] = -1.0  # the padding item comes last
        order = sorted(range(self.n_items), key=lambda item: (-counts[item].item(), item))
        scores = torch.zeros(self.n_items)
        scores[order] = torch.arange(self.n_items, 0, -1, dtype=torch.float32) / self.n_items
        self.register_buffer("rank_scores", scores.unsqueeze(1))  # n_items x 1
        self.step = nn.Parameter(torch.zeros(1))  # for the trainer's optimizer; the loss never moves it

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, None]:
        batch_size = len(interaction[self.ITEM_SEQ])
        return self.rank_scores.new_ones(batch_size, 1, 1), None

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``n_items x 1`` (or ``S x 1`` for ids ``items``): each item's rank score."""
        return self.rank_scores if items is None else self.rank_scores[items]

    def calculate_loss(self, interaction) -> torch.Tensor:
        return self.step.sum() * 0.0
