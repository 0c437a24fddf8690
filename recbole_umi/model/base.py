"""Base class of the plugin's models: history, profile hook, shared loss and scoring."""

from __future__ import annotations

import math
from logging import getLogger

import torch
import torch.nn as nn
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType

from recbole_umi.model.layers import routing_overlap
from recbole_umi.model.losses import MultiInterestLoss
from recbole_umi.model.profile import ProfileEmbedding
from recbole_umi.settings import Setting, SettingsError, setting

__all__ = ["MultiInterestRecommender", "ModelConfigError"]


class ModelConfigError(SettingsError):
    """Settings that do not fit a model (n_interests other than 1 for a single-interest
    model, RecBole's negative sampling, ...)."""


class MultiInterestRecommender(SequentialRecommender):
    """A user tower producing K interest vectors, scored by max over interests (Eq 1).

    Subclasses implement :meth:`interests_and_routing` (``B x K x d`` interests and, for
    models that route items to interests, the ``B x T x K`` routing). This class reads the
    history (``ITEM_SEQ``, padded with 0), embeds the configured profile fields
    (``profile_fields``) when ``uses_profile`` is set, and owns the item embeddings and the
    shared loss (``recbole_umi.model.losses``), so ``calculate_loss``, ``predict`` and
    ``full_sort_predict`` are the same for every model.

    For retrieval: :meth:`forward` gives the K interest vectors of a batch of users and
    :meth:`item_embeddings` the ``n_items x d`` item vectors (row 0 is padding).
    """

    input_type = InputType.POINTWISE
    uses_profile = True
    # The config keys naming the interaction fields whose history lists the model reads: the
    # user-split protocol builds only these (recbole_umi.data.protocol).
    history_fields: tuple[str, ...] = ("ITEM_ID_FIELD",)
    # The boolean settings whose variants compare and tune may name by suffix (MIND+HN):
    # the ones that change what this model computes.
    variant_settings: tuple[str, ...] = ("harder_negatives",)
    # Narrower ranges than recbole_umi.settings gives, checked when the config is built.
    setting_restrictions: dict[str, Setting] = {}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.embedding_size = setting(config, "embedding_size")
        self.n_interests = setting(config, "n_interests")
        neg_args = config["train_neg_sample_args"]
        if neg_args is not None and neg_args.get("distribution", "none") != "none":
            raise ModelConfigError(
                "train_neg_sample_args", neg_args,
                f"must be ~ (None): {config['model']} samples its own negatives (n_negatives, negative_sampler)",
            )
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.profile = None
        if self.uses_profile:
            self.profile = ProfileEmbedding(
                dataset,
                setting(config, "profile_fields"),
                setting(config, "profile_embedding_size"),
                setting(config, "float_profile_buckets"),
            )
        self.loss_fct = MultiInterestLoss.from_config(config, dataset, self.readout_power(config))
        # evaluation's top N through a faiss index instead of scoring every item
        self.retrieval = setting(config, "retrieval")
        self._index_spec = None
        if self.retrieval != "full_sort":
            from recbole_umi.retrieval import IndexSpec  # faiss only where it is used

            self._index_spec = IndexSpec.from_config(config)
        self._retrieval_n = max(config["topk"])
        self._retriever_cache = None
        self.routing_regularization = setting(config, "routing_regularization")
        if self.routing_regularization > 0 and not self.routes_items:
            raise ModelConfigError(
                "routing_regularization", self.routing_regularization,
                f"must be 0: {config['model']} routes no items to interests",
            )

    # Whether interests_and_routing gives a routing (models with K > 1 interests over items).
    routes_items = True

    def readout_power(self, config) -> float:
        """p of the training readout without harder negatives
        (:func:`recbole_umi.model.losses.readout_logits`): ``inf``, the positive's best
        interest (Eq 10). MIND takes its label-aware attention's p from the config."""
        return math.inf

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

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The K interest vectors O_u of each user, ``B x K x d``, and how the history items
        are routed to them, ``B x T x K`` (a weight per item and interest, 0 for padding;
        None for models without routing)."""
        raise NotImplementedError

    def forward(self, interaction) -> torch.Tensor:
        """The K interest vectors O_u of each user in the batch, ``B x K x d``."""
        return self.interests_and_routing(interaction)[0]

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors e_t: of every item, ``n_items x d`` (row 0 is the padding item), or
        of the ids ``items`` (shape ``S`` -> ``S x d``)."""
        return self.item_embedding.weight if items is None else self.item_embedding(items)

    def calculate_loss(self, interaction) -> torch.Tensor:
        interests, routing = self.interests_and_routing(interaction)
        # The loss asks for the vectors of its candidates only (all items for full_softmax).
        loss = self.loss_fct(interests, interaction[self.POS_ITEM_ID], self.item_embeddings)
        if self.routing_regularization > 0:  # against routing collapse: docs/design.md
            loss = loss + self.routing_regularization * routing_overlap(routing)
        return loss

    def predict(self, interaction) -> torch.Tensor:
        """``B`` scores ``max_k o_k . e_t`` of each row's item."""
        interests = self.forward(interaction)
        items = self.item_embeddings(interaction[self.ITEM_ID])
        return (interests * items.unsqueeze(1)).sum(dim=-1).max(dim=1).values

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """``B x n_items`` scores ``max_k o_k . e_t`` for every item.

        With ``retrieval`` other than ``full_sort``, only the top ``max(topk)`` items that a
        faiss search of every interest returns (:mod:`recbole_umi.retrieval`) get their
        scores; every other item gets ``-inf``, so RecBole's evaluator ranks what a
        deployment would return. The index is built from the current item vectors and
        rebuilt whenever a parameter has changed (a training step, loaded weights)."""
        interests = self.forward(interaction)
        if self._index_spec is None:
            return torch.matmul(interests, self.item_embeddings().t()).max(dim=1).values
        scores, item_ids = self._retriever().search(interests, self._retrieval_n)
        found = torch.from_numpy(item_ids >= 0)
        if not found.all() and not self._retriever_cache[2]:
            self._retriever_cache[2] = True
            getLogger().warning(
                f"retrieval {self.retrieval}: {int((~found).any(dim=1).sum())} of {len(found)} users got fewer "
                f"than {self._retrieval_n} items from the index (raise retrieval_nprobe); their empty places are "
                "filled with arbitrary items that count for the metrics"
            )
        dense = torch.full((len(interests), self.n_items), -torch.inf, device=interests.device)
        rows = torch.arange(len(interests)).unsqueeze(1).expand_as(found)
        dense[rows[found], torch.from_numpy(item_ids)[found]] = torch.from_numpy(scores)[found].to(dense)
        return dense

    def _retriever(self):
        """The faiss retriever over the current item vectors (built again after any change
        of a parameter: torch counts in-place changes in ``_version``)."""
        from recbole_umi.retrieval import InterestRetriever

        state = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if self._retriever_cache is None or self._retriever_cache[0] != state:
            retriever = InterestRetriever(self.item_embeddings().detach(), self._index_spec)
            self._retriever_cache = [state, retriever, False]  # False: no short lists warned of yet
        return self._retriever_cache[1]
