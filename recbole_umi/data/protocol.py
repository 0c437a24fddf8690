"""The paper's evaluation protocol ("strong generalization") inside RecBole.

``eval_protocol: user_split`` replaces RecBole's next-item leave-one-out:

- users, not interactions, are split ``user_split_ratios`` (default 80/10/10) into
  train / validation / test, with the seed ``user_split_seed``: the same split for every
  model and every training seed. The split depends on the users' original ids (tokens) and
  the seed only, not on the order of the rows in the ``.inter`` file (RecBole numbers users
  in order of appearance);
- training users give one sample per target position, with up to T = ``MAX_ITEM_LIST_
  LENGTH`` preceding items as history (RecBole's usual sequence augmentation;
  ``train_sampling: all_positions``), or, with ``train_sampling: one_per_user``, one
  randomly drawn target per user, drawn afresh every epoch (the paper's), or, with
  ``train_sampling: windows`` (causal encoders only), one row per T consecutive targets
  whose every history position is a target (:func:`recbole_umi.data.split.window_targets`);
- each validation / test user is ONE row: the first ``history_share`` (90%) of the user's
  chronological sequence is the history (its last T items are fed to the model), ALL the
  remaining items are the positives. At least one item is kept on each side; users with
  fewer than 2 interactions cannot be evaluated and are left out (and counted in the log).

RecBole's evaluator then computes the paper's metrics under RecBole's names:
``recall@N`` is the paper's HitRate@N (Eq 15) and ``precision@N`` its Precision@N
(Eq 16). RecBole's ``hit@N`` is a different metric (share of users with any hit).
``eval_protocol: recbole`` keeps RecBole's own splitting (``eval_args``).

Under both protocols, :func:`create_dataset` warns with a count when users of the
``.inter`` file have no row in the ``.user`` file (RecBole drops them, or keeps them with
unknown profile values under ``filter_inter_by_user_or_item: False``), and refuses cut-offs
``topk`` longer than the catalogue; :func:`recbole_umi.data.loaders.data_preparation` refuses
a split with no training samples, validation or test users. All of this happens before
anything trains. The loaders are in :mod:`recbole_umi.data.loaders`, the split's arithmetic
in :mod:`recbole_umi.data.split`.
"""

from __future__ import annotations

import importlib
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
from recbole.data import create_dataset as recbole_create_dataset
from recbole.data.dataset import Dataset, SequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils import ModelType, set_color

from recbole_umi.data.checks import DataChecks, DataError
from recbole_umi.data.profile_noise import corrupt_profiles
from recbole_umi.data.split import canonical_order, concat_ranges, history_cut, split_users, window_targets
from recbole_umi.settings import SettingsError, check_topk, setting, window_stride

__all__ = [
    "ProtocolConfigError",
    "DataChecks",
    "DataError",
    "CheckedDataset",
    "CheckedSequentialDataset",
    "UserSplitDataset",
    "create_dataset",
    "check_dataset_folder",
    "check_protocol_config",
    "history_cut",
    "split_users",
    "concat_ranges",
    "canonical_order",
    "window_targets",
]


class ProtocolConfigError(SettingsError):
    """The evaluation protocol does not fit the model."""


# Settings of the user-split protocol, with the values that mean "off" (the first is the default).
USER_SPLIT_ONLY = {"eval_history_items": (None,), "history_dropout": (0.0, 0), "exclude_history": (False,),
                   "eval_history_curve": (None,), "also_exclude_history": (False,), "max_samples_per_user": (None,),
                   "timestamp_ties": ("file",)}


def check_protocol_config(config) -> str:
    """Validate the protocol's settings; returns the protocol name."""
    protocol = setting(config, "eval_protocol")
    if protocol == "recbole":
        for key, off in USER_SPLIT_ONLY.items():
            if key in config and config[key] not in off:
                raise ProtocolConfigError(key, config[key], "needs eval_protocol: user_split (RecBole's protocol "
                                          f"evaluates and trains its own way); leave it at {off[0]!r}")
        return protocol
    if config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
        raise ProtocolConfigError(
            "eval_protocol", protocol,
            "evaluates users never seen in training from their history, which needs a "
            f"sequential model; {config['model']} is not one: use eval_protocol: recbole",
        )
    if "benchmark_filename" in config and config["benchmark_filename"]:
        raise ProtocolConfigError("benchmark_filename", config["benchmark_filename"],
                                  "must be empty under eval_protocol: user_split (RecBole's files split in advance; the "
                                  "user split makes its own parts): use eval_protocol: recbole")
    for key in ("user_split_ratios", "user_split_seed", "history_share", "train_sampling"):
        setting(config, key)
    return protocol


class UserSplitDataset(DataChecks, SequentialDataset):
    """A ``SequentialDataset`` whose ``build()`` applies the user-split protocol.

    RecBole augments the whole sequence table in a Python loop over every interaction;
    here ``build()`` creates only the training samples and evaluation rows, vectorised. Evaluation splits carry the targets
    of each row in ``target_items`` / ``target_offsets`` (row r's targets are
    ``target_items[target_offsets[r]:target_offsets[r + 1]]``).
    """

    def data_augmentation(self):
        self._aug_presets()  # declare the *_list fields; rows are built in build()

    def _remove_duplication(self):
        """RecBole's (``rm_dup_inter``: keep the first or last of a user's repeats of an item),
        its sort by time made stable: pandas' default quicksort leaves the rows of one
        timestamp in no defined order, where ``timestamp_ties: file`` promises the file's."""
        keep = self.config["rm_dup_inter"]
        if keep is None or self.time_field not in self.inter_feat:
            return super()._remove_duplication()  # nothing to do, or RecBole's warning
        self._check_field("uid_field", "iid_field")
        self.inter_feat.sort_values(by=[self.time_field], kind="stable", inplace=True)
        self.inter_feat.drop_duplicates(subset=[self.uid_field, self.iid_field], keep=keep, inplace=True)

    def build(self):
        self._check_field("uid_field", "time_field")
        self._sort_by_user_and_time()  # on the DataFrame's 64-bit times, before RecBole's 32-bit tensors
        self._change_feat_format()  # DataFrames -> Interactions, as RecBole's build() starts
        users = self.inter_feat[self.uid_field].numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        tokens = self.id2token(self.uid_field, users[starts])
        parts = split_users(tokens, self.config["user_split_ratios"], self.config["user_split_seed"])

        train_users = parts[0]
        # each training user's targets: every position after the first, or its last max_samples_per_user
        cap = self.config["max_samples_per_user"]
        first_targets = starts[train_users] + 1
        if cap is not None:
            first_targets = np.maximum(first_targets, ends[train_users] - cap)
        if self.config["train_sampling"] == "windows":  # a row's every position is a target
            train_targets, samples_per_user = window_targets(first_targets, ends[train_users], window_stride(self.config))
        else:
            samples_per_user = ends[train_users] - first_targets
            train_targets = concat_ranges(first_targets, ends[train_users])
        train_starts = np.repeat(starts[train_users], samples_per_user)
        self._warn_dominant_user(tokens[train_users], samples_per_user)
        built = [self._rows(train_targets, train_starts)]
        # every target the training loss counts, each once (a window row trains on the last
        # window_stride positions, so counting the rows' own targets would miss the others)
        items = self.inter_feat[self.iid_field].numpy()
        built[0].target_counts = torch.from_numpy(
            np.bincount(items[concat_ranges(first_targets, ends[train_users])], minlength=self.item_num))
        # row r of user u's samples: built[0] rows user_offsets[u] .. user_offsets[u + 1] - 1
        samples_per_user = samples_per_user[samples_per_user > 0]  # a one-interaction user has none
        built[0].user_offsets = torch.from_numpy(np.r_[0, np.cumsum(samples_per_user)])
        built[0].n_training_users = len(train_users)

        if self.config["history_dropout"]:
            built[0].history_dropout = self.config["history_dropout"]
        self._held_out_users = (starts, ends, parts[1:])  # for held_out_splits
        built += self.held_out_splits(self.config["eval_history_items"])
        logger = getLogger()
        logger.info(
            set_color("user split", "pink")
            + f": {len(parts[0])} / {len(parts[1])} / {len(parts[2])} users (train / valid / test), "
            f"{len(built[0])} training samples, seed {self.config['user_split_seed']}"
        )
        return built

    def _sort_by_user_and_time(self) -> None:
        """Each user's interactions in time order. Interactions of one user with the same
        timestamp keep the file's order (``timestamp_ties: file``, the default) or go by their
        item's original id (``item_id``: the same sequences whatever the file's row order); the
        share of such ties is logged, and warned about when any exist, since the order within
        a tie decides which items are history and which are targets.

        Sorted while the interactions are a DataFrame, on their 64-bit times: RecBole's
        tensors hold a float field in 32 bits, whose step near 1e9 (Unix seconds) is 64 s, so
        sorted there, interactions up to a minute apart would tie and keep the file's order."""
        frame = self.inter_feat
        users, times = frame[self.uid_field].to_numpy(), frame[self.time_field].to_numpy()
        keys = [times, users]  # np.lexsort sorts by the last key first, and is stable
        if self.config["timestamp_ties"] == "item_id":
            tokens = self.id2token(self.iid_field, frame[self.iid_field].to_numpy())
            rank = np.empty(len(tokens), dtype=np.int64)
            rank[canonical_order(tokens)] = np.arange(len(tokens))
            keys.insert(0, rank)
        order = np.lexsort(keys)
        self.inter_feat = frame.iloc[order].reset_index(drop=True)
        users, times = users[order], times[order]
        same = (users[1:] == users[:-1]) & (times[1:] == times[:-1])
        tied = int((np.r_[same, False] | np.r_[False, same]).sum())  # rows in a tie of two or more
        if tied:
            how = ("the file's order (rows earlier in the file first): reordering the rows of the .inter file changes "
                   "these users' histories and targets; timestamp_ties: item_id orders them by item id instead"
                   if self.config["timestamp_ties"] == "file" else "their items' original ids")
            self.logger.warning(f"{tied} of {len(users)} interactions ({100 * tied / len(users):.1f}%) share their "
                                f"timestamp with another of the same user; within a tie the order is {how}")

    def _warn_dominant_user(self, tokens, samples_per_user) -> None:
        """A warning with the share when one training user holds more than
        ``DOMINANT_USER_SHARE`` of the training samples (``max_samples_per_user`` caps it)."""
        total = int(samples_per_user.sum())
        if total == 0:
            return
        heaviest = int(np.argmax(samples_per_user))
        share = samples_per_user[heaviest] / total
        if share > DOMINANT_USER_SHARE:
            self.logger.warning(
                f"training user {tokens[heaviest]} holds {100 * share:.1f}% of the training samples "
                f"({int(samples_per_user[heaviest])} of {total}): the loss is mostly that user's; "
                "max_samples_per_user caps each user's samples (the last ones are kept)"
            )

    def held_out_splits(self, history_items: int | None = None, exclude_history: bool | None = None) -> list:
        """The validation and test rows: one per held-out user, its history the first
        ``history_share`` of its sequence (``history_items`` None, the paper's cut) or its
        first ``history_items`` interactions (0: none, the profile alone; the cold-start
        protocol), its targets every item after them. Users without a target after the
        history are left out (with a warning). Each split also holds every row's targets
        (``target_items`` / ``target_offsets``), its full history length before the model's
        last-T cut (``history_lengths``) and, with ``exclude_history`` (None: the setting of
        that name), a flag for the loader to leave the history's items out of the ranking."""
        if exclude_history is None:
            exclude_history = bool(self.config["exclude_history"])
        starts, ends, parts = self._held_out_users
        items = self.inter_feat[self.iid_field].numpy()
        needed = 2 if history_items is None else history_items + 1
        splits = []
        for name, part in zip(("valid", "test"), parts):
            length = ends[part] - starts[part]
            evaluable = part[length >= needed]
            if len(evaluable) < len(part):
                getLogger().warning(f"{len(part) - len(evaluable)} {name} users have fewer than {needed} interactions "
                                    "and are not evaluated")
            first = starts[evaluable]
            cut = history_cut(ends[evaluable] - first, self.config["history_share"]) if history_items is None \
                else np.full(len(evaluable), history_items, dtype=np.int64)
            first_target = first + cut
            split = self._rows(first_target, first)
            split.target_offsets = torch.from_numpy(np.r_[0, np.cumsum(ends[evaluable] - first_target)])
            split.target_items = torch.from_numpy(items[concat_ranges(first_target, ends[evaluable])])
            split.history_lengths = torch.from_numpy(cut)
            split.exclude_history = exclude_history
            if split.exclude_history:  # every history item of row r: history_items[history_offsets[r]:...[r + 1]]
                split.history_offsets = torch.from_numpy(np.r_[0, np.cumsum(cut)])
                split.history_items = torch.from_numpy(items[concat_ranges(first, first_target)])
            splits.append(split)
        return splits

    def __getitem__(self, index, join=True):
        """Rows ``index`` (with their user and item features when ``join``).

        RecBole's ``Interaction.__getitem__`` turns the index into a Python list and
        indexes every field with that list again; at batch 1024 this was about 12% of a
        UMI training epoch on ml-1m (py-spy, docs/benchmarks.md). Here each field is
        indexed with one tensor."""
        index = torch.as_tensor(index)
        rows = _gather(self.inter_feat, index)
        if _TARGET in rows:  # a row of _rows: its history lists, gathered now
            rows = self._with_history(rows)
        if join and self.user_feat is not None and self.uid_field in rows:
            rows.update(_gather(self.user_feat, rows[self.uid_field]))
        if join and self.item_feat is not None and self.iid_field in rows:
            rows.update(_gather(self.item_feat, rows[self.iid_field]))
        return rows

    def _rows(self, target_positions: np.ndarray, user_starts: np.ndarray):
        """A copy of the dataset with one row per target position: the target row's own
        fields, and where its history lies (the target's position and its user's first
        position, in two internal columns). The T-long list fields of the history (up to T
        preceding values of the same user, left-aligned and zero-padded, as RecBole's
        augmentation makes them) are gathered for each batch when it is drawn
        (:meth:`__getitem__`), never stored: a row costs its own fields and 16 bytes, not
        T values of every list field (about 800 bytes a row at T = 50)."""
        targets = torch.from_numpy(np.asarray(target_positions, dtype=np.int64))
        rows = _gather(self.inter_feat, targets)
        rows.update(Interaction({_TARGET: targets, _USER_START: torch.from_numpy(np.asarray(user_starts, dtype=np.int64))}))
        copy = self.copy(rows)
        # the whole sequence table's columns the windows read: the sorted table is kept once
        copy._window_source = {field: self.inter_feat[field] for field in self._history_fields()}
        return copy

    def _history_fields(self) -> list[str]:
        """The interaction fields whose history lists are built: those the model class the
        config was built for declares in ``history_fields`` (config keys naming fields:
        ``("ITEM_ID_FIELD",)`` for the plugin's models, which read nothing else), else every
        field but the user (RecBole's models, which may read any of them)."""
        declared = getattr(self.config.model_class, "history_fields", None)
        if declared is not None:
            return [self.config[key] for key in declared]
        return [field for field in self.inter_feat.columns if field not in (self.uid_field, _TARGET, _USER_START)]

    def _with_history(self, rows: Interaction) -> Interaction:
        """``rows`` with their history lists and lengths gathered, the internal columns gone."""
        targets, starts = rows[_TARGET], rows[_USER_START]
        max_length = self.max_item_list_len
        lengths = torch.clamp(targets - starts, max=max_length)
        window_starts = targets - lengths  # the last T items before the target
        dropout = getattr(self, "history_dropout", 0.0)
        if dropout:  # a share of the rows sees the user's first j items instead, j uniform in 0..lengths
            dropped = torch.rand(len(targets)) < dropout
            prefix = (torch.rand(len(targets)) * (lengths + 1).to(torch.float64)).long()
            lengths = torch.where(dropped, prefix, lengths)
            window_starts = torch.where(dropped, starts, window_starts)
        offsets = torch.arange(max_length)
        valid = offsets.unsqueeze(0) < lengths.unsqueeze(1)
        positions = torch.where(valid, window_starts.unsqueeze(1) + offsets.unsqueeze(0), 0)
        fields = {k: v for k, v in rows.interaction.items() if k not in (_TARGET, _USER_START)}
        fields[self.item_list_length_field] = lengths
        for field, values in self._window_source.items():
            gathered = values[positions]
            mask = valid.view(*valid.shape, *([1] * (gathered.dim() - 2)))
            fields[getattr(self, f"{field}_list_field")] = gathered * mask.to(gathered.dtype)
        return Interaction(fields)


# A training user holding more of the training samples than this share is warned about.
DOMINANT_USER_SHARE = 0.2

# Internal columns of the training and evaluation rows: where each row's history window lies.
_TARGET = "_history_target"
_USER_START = "_history_user_start"


def _gather(features: Interaction, index: torch.Tensor) -> Interaction:
    """``features[index]`` for a tensor index, field by field."""
    return Interaction({field: values[index] for field, values in features.interaction.items()})


class CheckedDataset(DataChecks, Dataset):
    """RecBole's ``Dataset`` with :class:`DataChecks`'s warning."""


class CheckedSequentialDataset(DataChecks, SequentialDataset):
    """RecBole's ``SequentialDataset`` with :class:`DataChecks`'s warning.

    RecBole's augmentation replaces the interactions by one row per target, an item after a
    user's first: a user with one interaction has no row left. ``single_interactions`` keeps
    those users and their items (internal ids), so that an export
    (:func:`recbole_umi.export._interactions`) still has every user's whole history."""

    def data_augmentation(self):
        users, items = self.inter_feat[self.uid_field].numpy(), self.inter_feat[self.iid_field].numpy()
        ids, counts = np.unique(users, return_counts=True)
        alone = np.isin(users, ids[counts == 1])
        self.single_interactions = (users[alone].copy(), items[alone].copy())
        super().data_augmentation()


def _recbole_dataset(config):
    """The dataset RecBole's ``create_dataset`` builds, with :class:`DataChecks`'s warning
    where RecBole would build a plain ``Dataset`` or ``SequentialDataset`` from the files.

    RecBole picks the class by model (``<model>Dataset``, e.g. knowledge-aware ones) or by
    model type; the model-specific classes are left to RecBole. RecBole's pickled dataset
    caches are never read (``save_dataset`` and ``dataset_save_path`` are refused in
    :mod:`recbole_umi.settings`; a cache file left in ``checkpoint_dir`` is ignored here and
    refused by :func:`recbole_umi.compat.read_no_recbole_pickles` on RecBole's own path)."""
    if hasattr(importlib.import_module("recbole.data.dataset"), config["model"] + "Dataset"):
        return recbole_create_dataset(config)
    checked = {ModelType.SEQUENTIAL: CheckedSequentialDataset, ModelType.GENERAL: CheckedDataset,
               ModelType.CONTEXT: CheckedDataset, ModelType.TRADITIONAL: CheckedDataset}.get(config["MODEL_TYPE"])
    if checked is None:
        return recbole_create_dataset(config)
    return checked(config)


def check_dataset_folder(config) -> None:
    """Refuse, before RecBole would try to download it, a dataset whose ``.inter`` file is
    not where the config says: when the user gave ``data_path`` (they meant that folder) or
    set ``offline: True``. Otherwise RecBole downloads the datasets it knows, as it does.
    With ``benchmark_filename`` (RecBole's pre-split data) the files are
    ``<dataset>.<part>.inter``, one per part; the first is looked for."""
    folder = Path(config["data_path"])
    given = "data_path" in config.external_config_dict
    parts = config["benchmark_filename"] if "benchmark_filename" in config else None
    expected = f"{config['dataset']}.{parts[0]}.inter" if parts else f"{config['dataset']}.inter"
    if (given or config["offline"]) and not (folder / expected).is_file():
        where = "data_path" if given else "offline"
        found = "the folder does not exist" if not folder.is_dir() else \
            f"it holds {sorted(p.name for p in folder.iterdir())[:8] or 'nothing'}"
        raise DataError(folder / expected,
                        f"is not there ({found}): data_path must be the folder holding {config['dataset']}/, "
                        f"nothing is downloaded with {where} given" if given else
                        f"is not there ({found}) and offline: True downloads nothing")


def create_dataset(config):
    """RecBole's ``create_dataset``, or a :class:`UserSplitDataset` under ``user_split``;
    cut-offs ``topk`` longer than the dataset's catalogue are refused here, before training."""
    check_dataset_folder(config)
    if check_protocol_config(config) == "user_split":
        dataset = UserSplitDataset(config)
    else:
        dataset = _recbole_dataset(config)
    getLogger().info(dataset)
    if config["topk"]:
        check_topk(config["topk"], dataset.item_num - 1, config["dataset"])  # item_num counts the padding item
    if config["profile_noise"]:  # plugin models only: RecBole's have no profile_noise
        corrupt_profiles(dataset, setting(config, "profile_fields"), setting(config, "profile_noise"),
                         setting(config, "profile_noise_seed"))
    return dataset
