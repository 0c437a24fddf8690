"""Top-N items for users from an export (:mod:`recbole_umi.export`), in a fresh process.

    python -m recbole_umi.recommend EXPORT --user=42 [--n=10] [--keep_history] [--diversity=0.5]
    python -m recbole_umi.recommend EXPORT --history=1193,661,914 --profile=age=25,gender=M,occupation=4

prints each user's top N with original item ids, scores and titles (when the export has
them). From Python::

    recommender = Recommender("export/")
    recommender.recommend(users=["42"], n=10)                      # [[("2858", 4.1), ...]]
    recommender.recommend(histories=[["1193", "661"]], profiles=[{"age": "25", "gender": "M",
                          "occupation": "4"}], n=10)

Nothing here unpickles: the export's files are JSON, safetensors, faiss's binary index and
an ``.npz`` read with ``allow_pickle=False``. Nor does anything here import RecBole: the user
tower (:mod:`recbole_umi.towers`) is built from its saved settings and the data schema the
export describes (item count, history fields, each profile field's kind and values, the
training users), given the saved weights, and always runs in eval mode (in training mode the
routing logits of UMI and MIND are drawn afresh each call).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import faiss
import numpy as np
import torch
from safetensors.torch import load_file

from recbole_umi.retrieval import InterestRetriever, diversify
from recbole_umi.settings import migrate_saved_settings
from recbole_umi.towers import TOWER_CLASSES, DataSchema, UserTower, profile_field

__all__ = ["EXPORT_FORMAT", "Recommender", "RecommendError", "export_schema", "main"]

# What recbole_umi.export writes and this module reads.
EXPORT_FORMAT = {"format": "recbole-umi-export", "version": 1}


class RecommendError(ValueError):
    """A request the export cannot answer: an unknown user or item, a missing profile value,
    no diversity categories, a folder that is not an export."""


def export_schema(meta: dict, arrays: dict, settings: dict) -> DataSchema:
    """The data schema of an export: its item count and history fields, and each profile
    field made from every user's stored value and the training users, as the model's was
    made from the training data (:func:`recbole_umi.towers.schema.profile_field`)."""
    item_field = meta["fields"]["item"]
    profile = meta["profile"]
    training_users = torch.from_numpy(arrays["training_users"])
    fields = []
    for name in profile["fields"]:
        values, kind = torch.from_numpy(arrays[f"profile_{name}"]), profile["types"][name]
        fields.append(profile_field(name, kind, values, training_users, size=meta["num"][name] if kind == "token" else None,
                                    n_float_buckets=settings["float_profile_buckets"]))
    return DataSchema(
        n_items=meta["num"][item_field],
        max_history_length=settings["MAX_ITEM_LIST_LENGTH"],
        history_field=item_field + settings["LIST_SUFFIX"],
        history_length_field=settings["ITEM_LIST_LENGTH_FIELD"],
        profile=tuple(fields),
    )


class Recommender:
    """Serves top-N lists from an export folder.

    Args:
        folder: what ``python -m recbole_umi.export`` wrote.
    """

    def __init__(self, folder):
        folder = Path(folder)
        meta_path = folder / "export.json"
        if not meta_path.is_file():
            raise RecommendError(f"{folder} is not an export (no export.json): write one with python -m recbole_umi.export")
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in EXPORT_FORMAT} != EXPORT_FORMAT:
            raise RecommendError(f"{meta_path} is not a recbole-umi export of version {EXPORT_FORMAT['version']}")
        if meta["model"] not in TOWER_CLASSES:
            raise RecommendError(f"{meta_path} holds a {meta['model']} model, which has no tower here")
        self.meta = meta
        with np.load(folder / "arrays.npz", allow_pickle=False) as stored:
            self.arrays = {key: stored[key] for key in stored.files}
        settings = migrate_saved_settings(meta["model"], meta["settings"])
        tower_class = TOWER_CLASSES[meta["model"]]
        self.schema = export_schema(meta, self.arrays, settings)
        self.model: UserTower = tower_class(tower_class.settings_class.from_config(settings), self.schema)
        self.model.load_state_dict(load_file(str(folder / "model.safetensors")))
        self.model.eval()
        self.retriever = InterestRetriever(index=faiss.read_index(str(folder / "items.faiss")))
        self.item_tokens = meta["item_tokens"]
        self.item_ids = {token: i for i, token in enumerate(self.item_tokens) if i > 0}
        self.user_ids = {token: i for i, token in enumerate(meta["user_tokens"]) if i > 0}
        self.titles = meta["titles"]

    # -- building the user tower's input ---------------------------------------------------
    def _known_user_history(self, token: str) -> np.ndarray:
        if token not in self.user_ids:
            raise RecommendError(f"user {token!r} is not in the export ({len(self.user_ids)} users)")
        user = self.user_ids[token]
        start, end = self.arrays["history_offsets"][user : user + 2]
        return self.arrays["history_items"][start:end]

    def _item_ids(self, tokens) -> np.ndarray:
        unknown = [t for t in map(str, tokens) if t not in self.item_ids]
        if unknown:
            raise RecommendError(f"items the model does not know: {', '.join(unknown[:10])}"
                                 + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
        return np.array([self.item_ids[str(t)] for t in tokens], dtype=np.int64)

    def _profile_value(self, field: str, value):
        if self.meta["profile"]["types"][field] == "float":
            if value is None:
                raise RecommendError(f"profile field {field!r} needs a number")
            return float(value)
        vocab = self.meta["profile"]["vocab"][field]
        return vocab.index(str(value)) if value is not None and str(value) in vocab else 0  # 0: unknown

    def _batch(self, histories: list[np.ndarray], profiles: list[dict]) -> dict[str, torch.Tensor]:
        """The tower's input: the last T items of each history, left-aligned, and the profile ids."""
        length = self.schema.max_history_length
        sequences = torch.zeros(len(histories), length, dtype=torch.long)
        lengths = torch.zeros(len(histories), dtype=torch.long)
        for row, history in enumerate(histories):
            if len(history) == 0:
                raise RecommendError("a history needs at least one item")
            last = torch.from_numpy(np.asarray(history[-length:], dtype=np.int64))
            sequences[row, : len(last)], lengths[row] = last, len(last)  # left-aligned, as in training
        fields = {self.schema.history_field: sequences, self.schema.history_length_field: lengths}
        for field, kind in self.meta["profile"]["types"].items():
            values = [profile[field] for profile in profiles]
            fields[field] = torch.tensor(values, dtype=torch.float32 if kind == "float" else torch.long)
        return fields

    # -- the request -------------------------------------------------------------------------
    def recommend(self, users=None, histories=None, profiles=None, n: int = 10, exclude_history: bool = True,
                  diversity: float = 0.0, candidates: int | None = None) -> list[list[tuple[str, float]]]:
        """Each user's top ``n`` items as ``(item token, score)``, best first.

        Args:
            users: original ids of users in the export (their whole stored history and their
                profile are used), or
            histories, profiles: per user, item tokens in order (the last T are read) and a
                ``{field: value}`` dict for every profile field (None: an unknown value).
            exclude_history: leave out the items of the user's history.
            diversity: lambda of :func:`recbole_umi.retrieval.diversify` (0: off); needs an
                export with ``--category_field``.
            candidates: items re-ranked for diversity (default ``5 n``).
        """
        if (users is None) == (histories is None):
            raise RecommendError("give either users or histories (with profiles)")
        fields = self.meta["profile"]["fields"]
        if users is not None:
            users = [str(u) for u in users]
            item_histories = [self._known_user_history(u) for u in users]
            rows = [self.user_ids[u] for u in users]
            profile_ids = [{f: self.arrays[f"profile_{f}"][r].item() for f in fields} for r in rows]
        else:
            profiles = profiles if profiles is not None else [{} for _ in histories]
            if len(profiles) != len(histories):
                raise RecommendError(f"{len(histories)} histories but {len(profiles)} profiles")
            for profile in profiles:
                missing = [f for f in fields if f not in profile]
                if missing:
                    raise RecommendError(f"profile lacks {', '.join(missing)} (give None for an unknown value)")
            item_histories = [self._item_ids(h) for h in histories]
            profile_ids = [{f: self._profile_value(f, p[f]) for f in fields} for p in profiles]
        if diversity and "categories" not in self.arrays:
            raise RecommendError("diversity needs categories: export with --category_field")
        wanted = max(n, candidates or 5 * n) if diversity else n
        wanted = min(wanted, self.retriever.n_items)
        with torch.no_grad():
            interests = self.model(self._batch(item_histories, profile_ids))
        scores, ids = self.retriever.search(interests, wanted, exclude=item_histories if exclude_history else None)
        if diversity:
            scores, ids = diversify(scores, ids, self.arrays["categories"], min(n, wanted), diversity)
        return [[(self.item_tokens[i], float(s)) for s, i in zip(row_s[:n], row_i[:n]) if i >= 0]
                for row_s, row_i in zip(scores, ids)]

    def title(self, token: str) -> str | None:
        return self.titles[self.item_ids[token]] if self.titles else None


def _key_values(text: str) -> dict:
    pairs = [part.split("=", 1) for part in text.split(",") if part]
    if any(len(pair) != 2 for pair in pairs):
        raise RecommendError(f"--profile wants field=value pairs separated by commas, got {text!r}")
    return {key: (None if value == "" else value) for key, value in pairs}


def main(argv: list[str] | None = None) -> list:
    parser = argparse.ArgumentParser(description="Top-N items for a user from a recbole-umi export.")
    parser.add_argument("export", help="a folder written by python -m recbole_umi.export")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="original id of a user in the export")
    who.add_argument("--history", help="item ids in order, comma-separated (a new user); with --profile")
    parser.add_argument("--profile", default="", help="field=value,... for every profile field (with --history)")
    parser.add_argument("--n", type=int, default=10, help="items to list (default 10)")
    parser.add_argument("--keep_history", action="store_true", help="also list items of the user's history")
    parser.add_argument("--diversity", type=float, default=0.0, help="diversity lambda (needs an export with categories)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    recommender = Recommender(args.export)
    common = {"n": args.n, "exclude_history": not args.keep_history, "diversity": args.diversity}
    if args.user is not None:
        result = recommender.recommend(users=[args.user], **common)[0]
    else:
        result = recommender.recommend(histories=[args.history.split(",")], profiles=[_key_values(args.profile)], **common)[0]
    for rank, (token, score) in enumerate(result, 1):
        title = recommender.title(token)
        print(f"{rank:3d}  {token:>10}  {score:8.4f}" + (f"  {title}" if title else ""))
    return result


if __name__ == "__main__":
    main()
