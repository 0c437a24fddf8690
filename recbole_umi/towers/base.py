"""The base of every user tower: item table, history, profile, and the score of Eq 1."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from recbole_umi.towers.ops import lookup
from recbole_umi.towers.profile import ProfileEncoder
from recbole_umi.towers.schema import DataSchema
from recbole_umi.towers.settings import TowerSettings

__all__ = ["UserTower", "xavier_init"]


def xavier_init(module: nn.Module) -> None:
    """The towers' initialisation (``tower.apply(xavier_init)``): Xavier-normal weights of
    embeddings and linear layers, zero biases and padding rows."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class UserTower(nn.Module):
    """A user tower producing K interest vectors per user, scored by max over interests
    (Eq 1), and the item vectors they are scored against.

    Subclasses set ``settings_class`` and implement :meth:`interests_and_routing`
    (``B x K x d`` interests and, for towers that route items to interests, the
    ``B x T x K`` routing). This class owns the item table (``item_embedding``, row 0 the
    padding item), reads the history (``schema.history_field``, padded with 0) and, where
    the tower reads the profile (:meth:`reads_profile`), embeds the profile fields of the
    schema (``profile``; else None).

    A batch is any mapping from the schema's field names to tensors.

    Args:
        settings: the tower's settings object (:mod:`recbole_umi.towers.settings`).
        schema: the data (:class:`recbole_umi.towers.schema.DataSchema`).

    Example::

        tower = UMITower(settings, schema).eval()
        interests = tower({"item_id_list": history, "item_length": lengths, "gender": ...})  # B x K x d
        scores = tower.score_all_items(interests)                                             # B x n_items
    """

    settings_class: type[TowerSettings] = TowerSettings
    # Whether the class's towers may read the profile; an instance's ``uses_profile`` says
    # whether it does with its settings (reads_profile).
    uses_profile = True
    # Whether it reads the history (Popularity does not): one that reads neither history nor
    # profile still answers for a user without history.
    reads_history = True
    # Whether interests_and_routing gives a routing (towers with K > 1 interests over items).
    routes_items = True
    # p of the training readout without harder negatives (recbole_umi.towers.losses):
    # inf, the positive's best interest (Eq 10); MIND's label-aware attention sets its own.
    readout_power = math.inf

    def __init__(self, settings: TowerSettings, schema: DataSchema):
        super().__init__()
        if not isinstance(settings, self.settings_class):
            raise TypeError(f"{type(self).__name__} takes {self.settings_class.__name__}, got {type(settings).__name__}")
        self.settings = settings
        self.schema = schema
        self.embedding_size = settings.embedding_size
        self.n_interests = settings.n_interests
        self.item_embedding = nn.Embedding(schema.n_items, settings.embedding_size, padding_idx=0)
        self.uses_profile = self.reads_profile(settings)
        self.answers_without_history = self.answers_empty_history(settings)
        self.profile = ProfileEncoder(schema.profile, settings.profile_embedding_size) if self.uses_profile else None

    @classmethod
    def reads_profile(cls, settings: TowerSettings) -> bool:
        """Whether a tower of this class with ``settings`` reads the user profile: the
        class's ``uses_profile``, unless its settings leave the profile out (UMISA without
        steering and refinement)."""
        return cls.uses_profile

    @classmethod
    def answers_empty_history(cls, settings: TowerSettings) -> bool:
        """Whether a tower of this class with ``settings`` has interests of its own for a
        user without history: one that reads the profile (from it alone) or that reads no
        history (Popularity); the instance's ``answers_without_history``."""
        return cls.reads_profile(settings) or not cls.reads_history

    def history(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """History item embeddings ``B x T x d`` and their mask ``B x T`` (True = item)."""
        item_seq = batch[self.schema.history_field]
        return lookup(self.item_embedding, item_seq), item_seq != 0

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The K interest vectors O_u of each user, ``B x K x d``, and how the history items
        are routed to them, ``B x T x K`` (a weight per item and interest, 0 for padding;
        None for towers without routing)."""
        raise NotImplementedError

    def forward(self, batch) -> torch.Tensor:
        """The K interest vectors O_u of each user in the batch, ``B x K x d``."""
        return self.interests_and_routing(batch)[0]

    # Whether the tower gives the interests of every prefix of a history in one pass
    # (prefix_interests): causal encoders, which ``train_sampling: windows`` trains.
    causal = False

    def prefix_interests(self, batch) -> torch.Tensor:
        """The interests each prefix of the history gives, ``B x T x K x d``: at index j, what
        :meth:`forward` gives for the history cut after position j (causal towers only)."""
        raise NotImplementedError(f"{type(self).__name__} has no one-pass prefixes (train_sampling: windows)")

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors e_t: of every item, ``n_items x d`` (row 0 is the padding item), or
        of the ids ``items`` (shape ``S`` -> ``S x d``)."""
        return self.item_embedding.weight if items is None else lookup(self.item_embedding, items)

    def score_items(self, interests: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Eq 1 for one item per user: ``max_k o_k . e_t``; ``B x K x d``, ``B`` -> ``B``."""
        vectors = self.item_embeddings(items)
        return (interests * vectors.unsqueeze(1)).sum(dim=-1).max(dim=1).values

    def score_all_items(self, interests: torch.Tensor) -> torch.Tensor:
        """Eq 1 for every item: ``B x K x d`` -> ``B x n_items`` (column 0 the padding item)."""
        return torch.matmul(interests, self.item_embeddings().t()).max(dim=1).values
