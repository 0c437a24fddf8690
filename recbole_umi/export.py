"""Export a trained model for serving: the item index, the id mapping, the user tower.

    python -m recbole_umi.export CHECKPOINT OUT [--data_path=DIR] [--category_field=genre]
        [--title_field=movie_title] [--retrieval=faiss_ivf --retrieval_nprobe=32 ...]

reads a checkpoint with :func:`recbole_umi.load` (weights only, the dataset rebuilt from its
files and checked) and writes to ``OUT``:

- ``items.faiss``: a faiss index of the item vectors (row ``i`` is item id ``i + 1``), of the
  kind the ``retrieval`` settings name (``full_sort`` exports an exact index); faiss's own
  binary format;
- ``model.safetensors``: the model's weights (safetensors: tensors only, no code);
- ``arrays.npz`` (read with ``allow_pickle=False``): every user's whole history (item ids in
  order), every user's profile values and the training users (what serving makes the
  tower's profile schema from), and the items' categories if asked for;
- ``export.json``: the model and its settings, the original item and user ids (tokens) in
  id order, the profile fields' vocabularies, item titles, the index's parameters as built
  (``index``) and as asked (``index_settings``).

:mod:`recommend <recbole_umi.recommend>` serves from these files in a fresh process, with
neither the dataset nor pickled code.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from recbole.utils import FeatureType  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from recbole_umi.checkpoint import load, plain_config  # noqa: E402
from recbole_umi.config import parse_cmd_args  # noqa: E402
from recbole_umi.files import check_folder_path, folder_whole  # noqa: E402
from recbole_umi.item_file import TITLE_FIELDS, by_item_id, item_categories, item_file_columns  # noqa: E402
from recbole_umi.model import MatchingRecommender  # noqa: E402
from recbole_umi.recommend import EXPORT_FORMAT, EXPORT_FILES, file_digest, meta_digest  # noqa: E402
from recbole_umi.retrieval import IndexSpec, build_index, index_parameters  # noqa: E402

__all__ = ["EXPORT_FORMAT", "ExportError", "export", "spec_of", "main"]


class ExportError(ValueError):
    """The checkpoint's model cannot be exported, or an asked-for item field is missing."""


def _interactions(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every interaction's user and item id, by user and then in the user's order.

    Under ``eval_protocol: recbole`` RecBole has replaced the table by its augmented rows,
    one per target (an item after the first): the first item of each user is put back from
    the history of the user's first row, whose history is that item alone. A user with one
    interaction has no row there: its item comes from what the dataset kept of those
    (``single_interactions`` of :class:`recbole_umi.data.protocol.CheckedSequentialDataset`)."""
    features = dataset.inter_feat
    users, items = features[dataset.uid_field].numpy(), features[dataset.iid_field].numpy()
    time_field = dataset.time_field
    times = features[time_field].numpy().astype(np.float64) if time_field in features else np.arange(len(users), dtype=np.float64)
    rows = np.arange(len(users))
    list_field = getattr(dataset, f"{dataset.iid_field}_list_field", None)  # RecBole names it after the item field
    if list_field in features:
        order = np.lexsort((rows, times, users))  # by user, then time, then row
        first = order[np.r_[True, users[order][1:] != users[order][:-1]]]  # each user's first row
        users = np.r_[users[first], users]
        items = np.r_[features[list_field][first, 0].numpy(), items]
        times = np.r_[np.full(len(first), -np.inf), times]
        rows = np.r_[np.full(len(first), -1), rows]
        alone_users, alone_items = getattr(dataset, "single_interactions", (np.zeros(0, np.int64),) * 2)
        users, items = np.r_[users, alone_users], np.r_[items, alone_items]
        times, rows = np.r_[times, np.zeros(len(alone_users))], np.r_[rows, np.full(len(alone_users), -1)]
    order = np.lexsort((rows, times, users))  # by user, then time, then row
    return users[order], items[order]


# Files a desktop leaves in a folder it has shown (macOS, Windows): an export holding them is still one.
OS_LEFTOVERS = (".DS_Store", "Thumbs.db", "desktop.ini")


def check_replaceable(out) -> None:
    """``ExportError`` if ``out`` is a folder holding anything but an export's files (a
    checkpoint folder, a dataset, a project): an export replaces its folder whole, and would
    delete them. A new or empty folder, or an earlier export (even a damaged one), is fine."""
    out = Path(out)
    if not out.is_dir():
        return
    others = sorted(path.name for path in out.iterdir()
                    if path.name not in ("export.json", *EXPORT_FILES, *OS_LEFTOVERS) and not path.name.startswith("._"))
    if others:
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise ExportError(f"{out} holds files that are not an export's ({listed}): an export replaces its folder "
                          "whole; give a new or empty folder, or an earlier export's")


def export(checkpoint, out, data_path=None, category_field: str | None = None, title_field: str | None = None,
           cmd_args: list[str] | None = None) -> Path:
    """Write the serving files of a plugin model's checkpoint to ``out`` (see the module).

    Args:
        checkpoint: a checkpoint written by a run (best or ``-last``).
        out: the folder to write (created, or replaced whole: no file of an earlier export is kept);
            a folder holding other files is refused (:func:`check_replaceable`).
        data_path: where the dataset is, if not where it was in training.
        category_field: an item field (token or token_seq, e.g. ``genre``) whose values are
            the items' categories, for diversity re-ranking; read from the ``.item`` file.
        title_field: the item field shown as a title; default the first of
            :data:`TITLE_FIELDS` in the ``.item`` file, if any.
        cmd_args: ``--key=value`` settings over the saved ones (the ``retrieval*`` settings
            choose the index).
    """
    check_folder_path(out)  # before the checkpoint's dataset is loaded
    check_replaceable(out)
    loaded = load(checkpoint, data_path=data_path, cmd_args=cmd_args)
    config, model, dataset = loaded.config, loaded.model, loaded.dataset
    if not isinstance(model, MatchingRecommender):
        raise ExportError(f"{config['model']} is a RecBole model: only recbole-umi models can be exported")
    # written beside the final folder and moved into place whole: an export that fails never
    # leaves two models' files side by side
    with folder_whole(out, "an export") as folder:
        _write(folder, loaded, config, model, dataset, spec_of(config), category_field, title_field)
    return Path(out)


def spec_of(config) -> IndexSpec:
    """The index an export holds: the ``retrieval`` settings' (``full_sort``: an exact one)."""
    return IndexSpec() if config["retrieval"] == "full_sort" else IndexSpec.from_config(config)


def _write(out: Path, loaded, config, model, dataset, spec: IndexSpec, category_field, title_field) -> None:
    """The export's files in ``out`` (see the module), export.json last, with the digests."""
    uid, iid = dataset.uid_field, dataset.iid_field
    item_tokens = [str(t) for t in dataset.field2id_token[iid]]
    user_tokens = [str(t) for t in dataset.field2id_token[uid]]

    # the index
    with torch.no_grad():
        vectors = model.item_embeddings().detach().cpu().numpy()[1:]
    index = build_index(vectors, spec)
    faiss.write_index(index, str(out / "items.faiss"))

    # the weights: copies, so that tensors shared by two modules are written twice
    save_file({k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()},
              str(out / "model.safetensors"))

    arrays, profile = _user_arrays(loaded, model, dataset, len(user_tokens))
    titles, categories, category_ids = _item_facts(config, item_tokens, category_field, title_field)
    if category_ids is not None:
        arrays["categories"] = category_ids
    np.savez(out / "arrays.npz", **arrays)
    profile_fields = profile["fields"]

    meta = {
        **EXPORT_FORMAT,
        "model": config["model"],
        "dataset": config["dataset"],
        "settings": plain_config(config),
        "index": index_parameters(index),  # as built: IVF's nlist 0 (automatic) is the number chosen
        "index_settings": dataclasses.asdict(spec),  # as asked
        "fields": {"user": uid, "item": iid},
        "num": {field: int(dataset.num(field)) for field in [uid, iid, *profile_fields]},
        "item_tokens": item_tokens,
        "user_tokens": user_tokens,
        "profile": profile,
        "titles": titles,
        "category_field": category_field,
        "categories": categories,
        "checkpoint": {key: loaded.info[key] for key in ("path", "kind", "epoch", "best_valid_score")},
        # what recommend checks before it serves: each file's SHA-256, the index's shape and metric
        "files": {name: file_digest(out / name) for name in EXPORT_FILES},
        "vectors": {"items": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "metric": "inner_product"},
    }
    meta["meta_digest"] = meta_digest(meta)
    (out / "export.json").write_text(json.dumps(meta) + "\n")


def _user_arrays(loaded, model, dataset, n_users: int) -> tuple[dict[str, np.ndarray], dict]:
    """Every user's whole history (in order) and profile values, and the training users, as
    the arrays of ``arrays.npz``; and the profile's description for export.json (fields,
    types, token vocabularies). (Exports made before 2026-12-04 also hold item_counts, which
    nothing read: Popularity's ranking is in its weights.)"""
    uid = dataset.uid_field
    users, items = _interactions(dataset)
    offsets = np.searchsorted(users, np.arange(n_users + 1))
    arrays = {
        "history_items": items.astype(np.int64),
        "history_offsets": offsets.astype(np.int64),
        "training_users": np.unique(loaded.train_data.dataset.inter_feat[uid].numpy()).astype(np.int64),
    }
    profile_fields = list(model.profile.fields) if model.profile is not None else []
    profile = {"fields": profile_fields, "types": {}, "vocab": {}}
    for field in profile_fields:
        values = dataset.user_feat[field]
        if dataset.field2type[field] == FeatureType.TOKEN:
            profile["types"][field] = "token"
            profile["vocab"][field] = [str(t) for t in dataset.field2id_token[field]]
            arrays[f"profile_{field}"] = values.numpy().astype(np.int64)
        else:
            profile["types"][field] = "float"
            arrays[f"profile_{field}"] = values.numpy().astype(np.float32)
    return arrays, profile


def _item_facts(config, item_tokens: list[str], category_field, title_field):
    """The items' titles (``title_field``, or the first of :data:`TITLE_FIELDS` the .item file
    has) and categories (``category_field``: the names and each item's category ids) from the
    .item file: ``(titles, category names, category ids)``, None for what is not asked or
    found; a named column the file lacks is an :class:`ExportError`."""
    columns = item_file_columns(config)
    if title_field is None and columns is not None:
        title_field = next((name for name in TITLE_FIELDS if name in columns), None)
    for asked, name in ((title_field, "title_field"), (category_field, "category_field")):
        if asked is not None and (columns is None or asked not in columns):
            raise ExportError(f"--{name}={asked}: the dataset's .item file has no such column")
    titles = by_item_id(columns, config, item_tokens, title_field) if title_field is not None else None
    categories, category_ids = (item_categories(columns, config, item_tokens, category_field)
                                if category_field is not None else (None, None))
    return titles, categories, category_ids


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_umi.export",
        allow_abbrev=False,  # passed-through --key=value settings must never be read as an abbreviated option
        description="Export a trained recbole-umi model for serving (python -m recbole_umi.recommend). "
        "Further --key=value settings override the saved ones (e.g. --retrieval=faiss_ivf)."
    )
    parser.add_argument("checkpoint", help="a checkpoint written by a run")
    parser.add_argument("out", help="the folder to write")
    parser.add_argument("--data_path", default=None, help="where the dataset is, if not where it was in training")
    parser.add_argument("--category_field", default=None, help="item field of categories, for diversity (e.g. genre)")
    parser.add_argument("--title_field", default=None, help=f"item field shown as a title (default: {', '.join(TITLE_FIELDS)})")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    parse_cmd_args(rest)  # a malformed --key=value fails here, before anything loads
    out = export(args.checkpoint, args.out, args.data_path, args.category_field, args.title_field, rest)
    print(f"exported to {out}")
    return out


if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.export"))
