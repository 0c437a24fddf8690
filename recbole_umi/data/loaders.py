"""The user-split protocol's loaders: training batches (every target position, or one random
target per user and epoch), full-sort evaluation where a held-out user's row has all its
targets as positives, and the loaders of the cold-start curve and of seen items left out."""

from __future__ import annotations

import numpy as np
import torch
from recbole.data import data_preparation as recbole_data_preparation
from recbole.data.dataloader import FullSortEvalDataLoader, TrainDataLoader

from recbole_umi.config import one_process_view
from recbole_umi.data.protocol import ProtocolConfigError, check_protocol_config
from recbole_umi.settings import setting

__all__ = [
    "UserSplitEvalDataLoader",
    "OnePerUserTrainDataLoader",
    "TRAIN_LOADERS",
    "data_preparation",
    "eval_loaders",
    "history_curve_loaders",
]


class UserSplitEvalDataLoader(FullSortEvalDataLoader):
    """Full-sort evaluation where each row (one held-out user) has all its targets as
    positives; RecBole's ``Recall@N`` is then the paper's HitRate@N."""

    def collate_fn(self, index):
        index = np.array(index)
        interaction = self.transform(self._dataset, self._dataset[index])
        offsets = self._dataset.target_offsets
        starts, ends = offsets[index], offsets[index + 1]
        counts = ends - starts
        positive_u = torch.repeat_interleave(torch.arange(len(index)), counts)
        positive_i = torch.cat([self._dataset.target_items[s:e] for s, e in zip(starts.tolist(), ends.tolist())])
        history_index = None
        if getattr(self._dataset, "exclude_history", False):  # RecBole's trainer sets these scores to -inf
            first, last = self._dataset.history_offsets[index], self._dataset.history_offsets[index + 1]
            history_u = torch.repeat_interleave(torch.arange(len(index)), last - first)
            history_i = torch.cat([self._dataset.history_items[s:e] for s, e in zip(first.tolist(), last.tolist())])
            history_index = (history_u, history_i)
        return interaction, history_index, positive_u, positive_i


class OnePerUserTrainDataLoader(TrainDataLoader):
    """Training batches of users, each with ONE of its samples drawn afresh every time the
    user is drawn (so every epoch): the paper's "a random item from the user interacted
    items is selected as the target item, and the sequence before the target item is
    selected as user historical behaviors" (``train_sampling: one_per_user``). An epoch is
    one sample per training user; heavy users no longer dominate the loss."""

    def __init__(self, config, dataset, sampler, shuffle=False):
        self.user_offsets = dataset.user_offsets
        # its own stream, not a copy of RecBole's shuffling generator (seeded with `seed`)
        self.target_generator = torch.Generator().manual_seed(config["seed"] + 1)
        super().__init__(config, dataset, sampler, shuffle=shuffle)

    def _init_batch_size_and_step(self):
        # runs inside RecBole's __init__ before the index list is built: index users, not rows
        self.sample_size = len(self.user_offsets) - 1
        super()._init_batch_size_and_step()

    def collate_fn(self, index):
        users = torch.as_tensor(np.array(index))
        first, count = self.user_offsets[users], self.user_offsets[users + 1] - self.user_offsets[users]
        rows = first + (torch.rand(len(users), generator=self.target_generator) * count).long()
        return super().collate_fn(rows.numpy())


TRAIN_LOADERS = {"all_positions": TrainDataLoader, "one_per_user": OnePerUserTrainDataLoader,
                 "windows": TrainDataLoader}


def data_preparation(config, dataset):
    """Train / validation / test loaders for the configured protocol."""
    if check_protocol_config(config) == "recbole":
        if setting(config, "train_sampling") != "all_positions":
            raise ProtocolConfigError(
                "train_sampling", config["train_sampling"],
                "needs eval_protocol: user_split (RecBole's protocol builds its own samples)",
            )
        return recbole_data_preparation(config, dataset)
    train, valid, test = dataset.build()
    if len(train) == 0:
        raise ProtocolConfigError(
            "user_split_ratios", config["user_split_ratios"],
            f"leaves no training samples on the dataset {config['dataset']!r}: a sample is a training user's "
            f"interaction after at least one other, and its {train.n_training_users} training users have "
            "at most one interaction each (after RecBole's filters); the dataset needs users with 2 or more",
        )
    for name, split in (("validation", valid), ("test", test)):
        if len(split) == 0:  # RecBole would skip validation silently, or fail after training
            raise ProtocolConfigError(
                "user_split_ratios", config["user_split_ratios"],
                f"leaves no {name} users on the dataset {config['dataset']!r}: a held-out user needs at least "
                "2 interactions (after RecBole's filters), one of history and one target; give the held-out "
                "shares more users or use a larger dataset",
            )
    train_loader = TRAIN_LOADERS[setting(config, "train_sampling")]
    # In a distributed run each process trains on its share of the samples (RecBole's
    # DistributedSampler), but evaluates every user: RecBole's sampler would pad the users
    # to a multiple of the processes (some counted twice) and the per-user results would be
    # split across processes. Every process then computes the same metrics.
    train_data = train_loader(config, train, None, shuffle=config["shuffle"])
    return (train_data, *eval_loaders(config, valid, test))


def eval_loaders(config, valid, test):
    """Full-sort loaders of the validation and test rows of the user-split protocol."""
    with one_process_view(config):
        return (UserSplitEvalDataLoader(config, valid, None, shuffle=False),
                UserSplitEvalDataLoader(config, test, None, shuffle=False))


def history_curve_loaders(config, dataset, history_items: int | None, exclude_history: bool | None = None):
    """The validation and test loaders of ``dataset`` (a :class:`UserSplitDataset`, built)
    with each held-out user's first ``history_items`` interactions as its history
    (``eval_history_curve``; None: the run's own cut) and its history left out of the
    ranking or not (``exclude_history``; None: as the setting says); see
    :meth:`UserSplitDataset.held_out_splits`."""
    return eval_loaders(config, *dataset.held_out_splits(history_items, exclude_history))
