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
an ``.npz`` read with ``allow_pickle=False``. The files are opened between two equal reads of
export.json, so they are of one export (a re-export swaps the folder; an open file keeps
reading what it opened), each is checked against its digest before it is parsed, and what is
loaded is hashed again and must match (a file written in place meanwhile is refused). The
index is read as a stream, so loading it takes about its own size in memory; the weights and
the arrays are read whole, then parsed. Nor does anything here import RecBole: the user
tower (:mod:`recbole_umi.towers`) is built from its saved settings and the data schema the
export describes (item count, history fields, each profile field's kind and values, the
training users), given the saved weights, and always runs in eval mode (in training mode the
routing logits of UMI and MIND are drawn afresh each call).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np
import torch
from safetensors.torch import load as load_weights

from recbole_umi.retrieval import InterestRetriever, diversify
from recbole_umi.settings import migrate_saved_settings
from recbole_umi.towers import TOWER_CLASSES, DataSchema, UserTower, profile_field

__all__ = ["EXPORT_FORMAT", "EXPORT_FILES", "Recommender", "RecommendError", "export_schema", "file_digest",
           "meta_digest", "main"]

# What recbole_umi.export writes and this module reads. Version 2 added the files' digests and
# the index's shape to export.json (version 1 exports are refused: export them again).
EXPORT_FORMAT = {"format": "recbole-umi-export", "version": 2}
# The files besides export.json, each with its SHA-256 in export.json.
EXPORT_FILES = ("items.faiss", "model.safetensors", "arrays.npz")
# Users scored and searched at once: a request's memory stays flat in its number of users.
CHUNK_USERS = 1024
# What an unknown token profile value becomes: refused, or the unknown row 0 on purpose.
UNKNOWN_PROFILE = ("refuse", "unknown")


def file_digest(path) -> str:
    """SHA-256 of a file, read in blocks."""
    with open(path, "rb") as handle:
        return _handle_digest(handle)


def _handle_digest(handle) -> str:
    """SHA-256 of an open file from its start, read in blocks; the handle is left at the start."""
    handle.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def _open_export(folder: Path, attempts: int = 3) -> tuple[bytes, dict[str, BinaryIO]]:
    """export.json's bytes and open handles on the files of :data:`EXPORT_FILES`, all of one
    export. An export replaces its folder whole (:func:`recbole_umi.files.folder_whole`), and
    an open handle keeps reading the file it opened: handles opened between two equal reads
    of export.json are of that export. Else, or when a file was missing during the swap,
    everything is opened again. The caller closes the handles."""
    meta_path = folder / "export.json"
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.1)  # the two renames of a swap are apart by microseconds
        handles, whole = {}, False
        try:
            meta = meta_path.read_bytes()
            for name in EXPORT_FILES:
                handles[name] = (folder / name).open("rb")
            whole = meta_path.read_bytes() == meta
        except FileNotFoundError:
            pass
        finally:  # whatever went wrong, no handle is left open
            if not whole:
                for handle in handles.values():
                    handle.close()
        if whole:
            return meta, handles
    if not meta_path.is_file():
        raise RecommendError(f"{folder} is not an export (no export.json): write one with python -m recbole_umi.export")
    absent = [name for name in EXPORT_FILES if not (folder / name).is_file()]
    if absent:
        raise RecommendError(f"{folder} has no {', '.join(absent)}: the export is incomplete; export the checkpoint again")
    raise RecommendError(f"{folder} changed while it was read, {attempts} times: load it when the export is done")


class _HashedReads:
    """The reads of an export file from its start, hashed, so that what was loaded can be
    checked against the digest that was checked before (:meth:`check`)."""

    def __init__(self, path: Path, handle: BinaryIO, digest: str):
        self.path, self.handle, self.digest = path, handle, digest
        self.hashed = hashlib.sha256()
        handle.seek(0)

    def read(self, size: int = -1) -> bytes:
        block = self.handle.read(size)
        self.hashed.update(block)
        return block

    def check(self) -> None:
        """The rest of the file read too, what was read must be what was checked."""
        for block in iter(lambda: self.handle.read(1 << 20), b""):
            self.hashed.update(block)
        if self.hashed.hexdigest() != self.digest:
            raise RecommendError(f"{self.path} changed while it was loaded (written in place after its digest was "
                                 "checked): load it when nothing writes to it")


def meta_digest(meta: dict) -> str:
    """SHA-256 of export.json's content but its own digest (the ids, vocabularies, digests)."""
    rest = {key: value for key, value in meta.items() if key != "meta_digest"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


class RecommendError(ValueError):
    """A request the export cannot answer: an unknown user or item, a missing profile value,
    no diversity categories, a folder that is not an export."""


def export_schema(meta: dict, arrays: dict, settings: dict) -> DataSchema:
    """The data schema of an export: its item count and history fields, and each profile
    field made from every user's stored value and the training users, as the model's was
    made from the training data (:func:`recbole_umi.towers.schema.profile_field`)."""
    profile = meta["profile"]
    training_users = torch.from_numpy(arrays["training_users"])
    fields = []
    for name in profile["fields"]:
        values, kind = torch.from_numpy(arrays[f"profile_{name}"]), profile["types"][name]
        fields.append(profile_field(name, kind, values, training_users, size=meta["num"][name] if kind == "token" else None,
                                    n_float_buckets=settings["float_profile_buckets"]))
    return DataSchema.from_settings(settings, meta["num"][meta["fields"]["item"]], fields)


class Recommender:
    """Serves top-N lists from an export folder.

    Args:
        folder: what ``python -m recbole_umi.export`` wrote.
    """

    def __init__(self, folder):
        folder = Path(folder)
        meta_bytes, handles = _open_export(folder)  # also between the two renames of a re-export
        with ExitStack() as stack:
            for handle in handles.values():
                stack.enter_context(handle)
            self._load(folder, meta_bytes, handles)

    def _load(self, folder: Path, meta_bytes: bytes, handles: dict[str, BinaryIO]) -> None:
        """Check export.json and the files' digests, then load the arrays, the tower and the
        index from the open ``handles``."""
        meta_path = folder / "export.json"
        try:
            meta = json.loads(meta_bytes)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RecommendError(f"{meta_path} is damaged (not JSON: {error})") from None
        if meta.get("format") != EXPORT_FORMAT["format"]:
            raise RecommendError(f"{meta_path} is not a recbole-umi export")
        if meta.get("version") != EXPORT_FORMAT["version"]:
            raise RecommendError(f"{meta_path} is an export of version {meta.get('version')}, this recbole-umi reads "
                                 f"version {EXPORT_FORMAT['version']} (with file digests): export the checkpoint again")
        if meta.get("meta_digest") != meta_digest(meta):
            raise RecommendError(f"{meta_path} does not match its own digest: it was changed after the export")
        for name in EXPORT_FILES:  # one flipped bit in the index or the weights serves garbage silently
            if _handle_digest(handles[name]) != meta["files"][name]:
                raise RecommendError(f"{folder / name} does not match its digest in export.json: the file was changed "
                                     "or damaged after the export; export the checkpoint again")
        if meta["model"] not in TOWER_CLASSES:
            raise RecommendError(f"{meta_path} holds a {meta['model']} model, which has no tower here")
        self.meta = meta
        reads = {name: _HashedReads(folder / name, handles[name], meta["files"][name]) for name in EXPORT_FILES}
        array_bytes = reads["arrays.npz"].read()
        reads["arrays.npz"].check()
        with np.load(io.BytesIO(array_bytes), allow_pickle=False) as arrays:
            self.arrays = {key: arrays[key] for key in arrays.files}
        del array_bytes
        settings = migrate_saved_settings(meta["model"], meta["settings"])
        tower_class = TOWER_CLASSES[meta["model"]]
        self.schema = export_schema(meta, self.arrays, settings)
        weight_bytes = reads["model.safetensors"].read()
        reads["model.safetensors"].check()
        weights = load_weights(weight_bytes)
        del weight_bytes
        self.model: UserTower = tower_class(tower_class.settings_class.from_config(settings), self.schema)
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as error:  # torch names every missing or misshapen tensor
            raise RecommendError(f"{folder / 'model.safetensors'} does not fit a {meta['model']} built from "
                                 f"export.json's settings ({str(error).splitlines()[0]}); export the checkpoint "
                                 "again with this version") from None
        del weights
        self.model.eval()
        # a stream through a callback: the index's bytes are never all in memory beside it; parsed
        # before its second hash is complete, so a failed parse asks that hash first
        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(reads["items.faiss"].read, 1 << 20))
        except (RuntimeError, MemoryError) as error:
            reads["items.faiss"].check()
            raise RecommendError(f"{folder / 'items.faiss'} could not be read by faiss ({str(error).strip()[:200]}) "
                                 "though it matches its digest") from None
        reads["items.faiss"].check()
        self._check_index(index, meta, folder)
        self.retriever = InterestRetriever(index=index)
        self.item_tokens = meta["item_tokens"]
        self.item_ids = {token: i for i, token in enumerate(self.item_tokens) if i > 0}
        self.user_ids = {token: i for i, token in enumerate(meta["user_tokens"]) if i > 0}
        self.titles = meta["titles"]
        # from the profile alone, or reading nothing (Popularity); not UMISA without its refinement
        self.answers_without_history = self.model.answers_without_history

    def _check_index(self, index, meta: dict, folder: Path) -> None:
        """The index holds one vector per item but padding, of the model's size, by inner
        product, as export.json says."""
        with torch.no_grad():
            vectors = self.model.item_embeddings()
        expected = {"items": len(meta["item_tokens"]) - 1, "dim": int(vectors.shape[1])}
        found = {"items": int(index.ntotal), "dim": int(index.d)}
        if found != expected or found != {k: meta["vectors"][k] for k in found}:
            raise RecommendError(f"{folder / 'items.faiss'} holds {found['items']} vectors of size {found['dim']}, the "
                                 f"model has {expected['items']} items of size {expected['dim']}")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise RecommendError(f"{folder / 'items.faiss'} does not rank by inner product, as the model scores")

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

    def _profile_value(self, field: str, value, unknown_profile: str):
        if self.meta["profile"]["types"][field] == "float":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise RecommendError(f"profile field {field!r} needs a number, got {value!r}") from None
            if not math.isfinite(number):
                raise RecommendError(f"profile field {field!r} needs a finite number, got {value!r}")
            return number
        vocab = self.meta["profile"]["vocab"][field]
        if value is not None and str(value) in vocab[1:]:
            return vocab.index(str(value))
        if value is None or unknown_profile == "unknown":
            return 0  # the unknown row, asked for (None) or allowed
        shown = ", ".join(map(repr, vocab[1:11])) + (f" and {len(vocab) - 11} more" if len(vocab) > 11 else "")
        raise RecommendError(f"profile field {field!r} has no value {value!r} (known: {shown}); give None for an "
                             "unknown value, or unknown_profile='unknown' (--unknown_profile=unknown) to map unknown "
                             "values to it")

    def _batch(self, histories: list[np.ndarray], profiles: list[dict]) -> dict[str, torch.Tensor]:
        """The tower's input: the last T items of each history, left-aligned, and the profile ids."""
        length = self.schema.max_history_length
        sequences = torch.zeros(len(histories), length, dtype=torch.long)
        lengths = torch.zeros(len(histories), dtype=torch.long)
        for row, history in enumerate(histories):
            if len(history) == 0 and not self.answers_without_history:
                raise RecommendError(f"a {self.meta['model']} model reads only the history: a user without one gives "
                                     "it nothing to go on")
            if len(history) == 0:
                continue  # the profile alone (the cold-start protocol's k = 0)
            last = torch.from_numpy(np.asarray(history[-length:], dtype=np.int64))
            sequences[row, : len(last)], lengths[row] = last, len(last)  # left-aligned, as in training
        fields = {self.schema.history_field: sequences, self.schema.history_length_field: lengths}
        for field, kind in self.meta["profile"]["types"].items():
            values = [profile[field] for profile in profiles]
            fields[field] = torch.tensor(values, dtype=torch.float32 if kind == "float" else torch.long)
        return fields

    # -- the request -------------------------------------------------------------------------
    def recommend(self, users=None, histories=None, profiles=None, n: int = 10, exclude_history: bool = True,
                  diversity: float = 0.0, candidates: int | None = None,
                  unknown_profile: str = "refuse") -> list[list[tuple[str, float]]]:
        """Each user's top ``n`` items as ``(item token, score)``, best first.

        Args:
            users: original ids of users in the export (their whole stored history and their
                profile are used), or
            histories, profiles: per user, item tokens in order (the last T are read) and a
                ``{field: value}`` dict for every profile field (None: an unknown value; a field
                the model does not read is refused, and a model without profile ignores it).
            exclude_history: leave out the items of the user's history.
            diversity: lambda of :func:`recbole_umi.retrieval.diversify` (0: off); needs an
                export with ``--category_field``.
            candidates: items re-ranked for diversity (default ``5 n``).
            unknown_profile: a token profile value the export does not know is refused
                (``"refuse"``) or mapped to the unknown value (``"unknown"``).

        Users are scored and searched :data:`CHUNK_USERS` at a time, so that the memory of a
        request does not grow with its number of users.
        """
        self._check_request(n, diversity, candidates, unknown_profile)
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
                extra = [f for f in profile if f not in fields]
                if extra and fields:  # a model without profile ignores one (the same call for every model)
                    raise RecommendError(f"profile has fields the model does not read: {', '.join(map(str, extra))} "
                                         f"(its fields: {', '.join(fields) or 'none'})")
            item_histories = [self._item_ids(h) for h in histories]
            profile_ids = [{f: self._profile_value(f, p[f], unknown_profile) for f in fields} for p in profiles]
        if diversity and "categories" not in self.arrays:
            raise RecommendError("diversity needs categories: export with --category_field")
        wanted = max(n, candidates or 5 * n) if diversity else n
        wanted = min(wanted, self.retriever.n_items)
        lists = []
        for start in range(0, len(item_histories), CHUNK_USERS):
            chunk = slice(start, start + CHUNK_USERS)
            with torch.no_grad():
                interests = self.model(self._batch(item_histories[chunk], profile_ids[chunk]))
            scores, ids = self.retriever.search(interests, wanted,
                                                exclude=item_histories[chunk] if exclude_history else None)
            if diversity:
                scores, ids = diversify(scores, ids, self.arrays["categories"], min(n, wanted), diversity)
            lists += [[(self.item_tokens[i], float(s)) for s, i in zip(row_s[:n], row_i[:n]) if i >= 0]
                      for row_s, row_i in zip(scores, ids)]
        return lists

    def _check_request(self, n, diversity, candidates, unknown_profile) -> None:
        if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= self.retriever.n_items):
            raise RecommendError(f"n = {n!r}: must be an integer in [1, {self.retriever.n_items}] (the export's items)")
        if not (isinstance(diversity, (int, float)) and math.isfinite(diversity) and diversity >= 0):
            raise RecommendError(f"diversity = {diversity!r}: must be a finite number >= 0 (0: off)")
        if candidates is not None and not (isinstance(candidates, int) and candidates >= n):
            raise RecommendError(f"candidates = {candidates!r}: must be an integer of at least n ({n})")
        if unknown_profile not in UNKNOWN_PROFILE:
            raise RecommendError(f"unknown_profile = {unknown_profile!r}: must be one of {UNKNOWN_PROFILE}")

    def categories(self, token: str) -> list[str]:
        """The categories of an item (an export with ``--category_field``; else empty)."""
        if "categories" not in self.arrays:
            return []
        names = self.meta["categories"]
        return [names[c] for c in np.flatnonzero(self.arrays["categories"][self.item_ids[token]])]

    def title(self, token: str) -> str | None:
        return self.titles[self.item_ids[token]] if self.titles else None


def _key_values(text: str) -> dict:
    pairs = [part.split("=", 1) for part in text.split(",") if part]
    if any(len(pair) != 2 for pair in pairs):
        raise RecommendError(f"--profile wants field=value pairs separated by commas, got {text!r}")
    return {key: (None if value == "" else value) for key, value in pairs}


def main(argv: list[str] | None = None) -> list:
    parser = argparse.ArgumentParser(prog="python -m recbole_umi.recommend",
                                     description="Top-N items for a user from a recbole-umi export.")
    parser.add_argument("export", help="a folder written by python -m recbole_umi.export")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="original id of a user in the export")
    who.add_argument("--history", help="item ids in order, comma-separated (a new user; empty: the profile alone); "
                                       "with --profile")
    parser.add_argument("--profile", default="", help="field=value,... for every profile field (with --history)")
    parser.add_argument("--n", type=int, default=10, help="items to list (default 10)")
    parser.add_argument("--keep_history", action="store_true", help="also list items of the user's history")
    parser.add_argument("--diversity", type=float, default=0.0, help="diversity lambda (needs an export with categories)")
    parser.add_argument("--unknown_profile", default="refuse", choices=UNKNOWN_PROFILE,
                        help="a profile value the export does not know: refuse (default) or map it to unknown")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    recommender = Recommender(args.export)
    common = {"n": args.n, "exclude_history": not args.keep_history, "diversity": args.diversity,
              "unknown_profile": args.unknown_profile}
    if args.user is not None:
        result = recommender.recommend(users=[args.user], **common)[0]
    else:
        history = [item for item in args.history.split(",") if item]
        result = recommender.recommend(histories=[history], profiles=[_key_values(args.profile)], **common)[0]
    show_categories = bool(args.diversity) and "categories" in recommender.arrays
    print(f"{'rank':>4}  {'item':>10}  {'score':>8}  title" + ("  [categories]" if show_categories else ""))
    for rank, (token, score) in enumerate(result, 1):
        title = recommender.title(token) or ""
        shown = f"  [{', '.join(recommender.categories(token))}]" if show_categories else ""
        print(f"{rank:4d}  {token:>10}  {score:8.4f}  {title}{shown}")
    return result


if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.recommend"))
