"""Base class of the plugin's models: history, profile hook, shared loss and scoring."""

from __future__ import annotations

import torch
import torch.nn as nn
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType

from recbole_umi.model.losses import MultiInterestLoss
from recbole_umi.model.profile import ProfileEmbedding

__all__ = ["MultiInterestRecommender", "ModelConfigError", "config_value"]


class ModelConfigError(ValueError):
    """A model's settings in the config are missing or out of range."""


def config_value(config, key: str, kind: type, minimum=None, choices=None):
    """``config[key]`` checked for presence, type, lower bound and allowed values."""
    if key not in config or config[key] is None:
        raise ModelConfigError(f"{config['model']} needs the config key {key!r}")
    value = config[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    # bool is an int subclass: True must not pass for an int setting, nor 1 for a bool one
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ModelConfigError(f"{key} must be of type {kind.__name__}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ModelConfigError(f"{key} must be >= {minimum}, got {value!r}")
    if choices is not None and value not in choices:
        raise ModelConfigError(f"{key} must be one of {tuple(choices)}, got {value!r}")
    return value


class MultiInterestRecommender(SequentialRecommender):
    """A user tower producing K interest vectors, scored by max over interests (Eq 1).

    Subclasses implement :meth:`forward` (``B x K x d`` interests). This class reads the
    history (``ITEM_SEQ``, padded with 0), embeds the configured profile fields
    (``profile_fields``) when ``uses_profile`` is set, and owns the item embeddings and the
    shared loss (``recbole_umi.model.losses``), so ``calculate_loss``, ``predict`` and
    ``full_sort_predict`` are the same for every model.

    For retrieval: :meth:`forward` gives the K interest vectors of a batch of users and
    :meth:`item_embeddings` the ``n_items x d`` item vectors (row 0 is padding).
    """

    input_type = InputType.POINTWISE
    uses_profile = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.embedding_size = config_value(config, "embedding_size", int, minimum=1)
        self.n_interests = config_value(config, "n_interests", int, minimum=1)
        neg_args = config["train_neg_sample_args"]
        if neg_args is not None and neg_args.get("distribution", "none") != "none":
            raise ModelConfigError(
                f"{config['model']} samples its own negatives (n_negatives, negative_sampler); "
                "set train_neg_sample_args: ~ instead of RecBole's negative sampling"
            )
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.profile = None
        if self.uses_profile:
            fields = config_value(config, "profile_fields", list)
            self.profile = ProfileEmbedding(
                dataset,
                fields,
                config_value(config, "profile_embedding_size", int, minimum=1),
                config_value(config, "float_profile_buckets", int, minimum=1),
            )
        self.loss_fct = MultiInterestLoss.from_config(config, dataset)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.xavier_normal_(module.weight)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def history(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """History item embeddings ``B x T x d`` and their mask ``B x T`` (True = item)."""
        item_seq = interaction[self.ITEM_SEQ]
        return self.item_embedding(item_seq), item_seq != 0

    def forward(self, interaction) -> torch.Tensor:
        """The K interest vectors O_u of each user in the batch, ``B x K x d``."""
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:
        """All item vectors e_t, ``n_items x d`` (row 0 is the padding item)."""
        return self.item_embedding.weight

    def calculate_loss(self, interaction) -> torch.Tensor:
        return self.loss_fct(self.forward(interaction), interaction[self.POS_ITEM_ID], self.item_embeddings())

    def predict(self, interaction) -> torch.Tensor:
        """``B`` scores ``max_k o_k . e_t`` of each row's item."""
        interests = self.forward(interaction)
        items = self.item_embeddings()[interaction[self.ITEM_ID]]
        return (interests * items.unsqueeze(1)).sum(dim=-1).max(dim=1).values

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """``B x n_items`` scores ``max_k o_k . e_t`` for every item."""
        interests = self.forward(interaction)
        return torch.matmul(interests, self.item_embeddings().t()).max(dim=1).values

    def initial_routing_logits(self, batch_size: int, length: int, std: float) -> torch.Tensor:
        """b_ij before routing, ``B x T x K``: fresh N(0, std^2) draws while training; in
        evaluation the fixed draw ``eval_routing_logits`` (saved with the model), so that
        a user's interests, and so ``predict`` and ``full_sort_predict``, are repeatable."""
        if self.training:
            shape = (batch_size, length, self.n_interests)
            return torch.randn(shape, device=self.item_embedding.weight.device) * std
        return self.eval_routing_logits[:length].unsqueeze(0).expand(batch_size, -1, -1)

    def register_eval_routing_logits(self, std: float) -> None:
        self.register_buffer("eval_routing_logits", torch.randn(self.max_seq_length, self.n_interests) * std)
