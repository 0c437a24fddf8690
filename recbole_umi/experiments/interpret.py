"""What a trained UMI attends to: the paper's case study (Figures 4, 5) and Figure 3b.

    python -m recbole_umi.interpret CHECKPOINT OUT --category_field=genre [--users=1,2,3]
        [--n_users=5] [--top=10] [--max_categories=12] [--data_path=DIR]
        [--truth=FILE.json [--truth_key=a.b]]

On the test users of the checkpoint's split:

- ``users.json``, for the chosen users (``--users``, else the first ``--n_users`` test
  users): each history item fed to the model (item id, title, categories) with its UGANet
  weight (Eq 2) and its routing over the interests, and for each interest its weights over
  the profile fields (Eq 7), its ``--top`` retrieved items with their categories, and its
  dominating category (the most common one among those items, as the paper names
  interests);
- ``field_weights_by_category.csv`` and ``.png``: the mean Eq 7 weight of each profile field
  over the clicked items of each category, each history item of every test user
  contributing the weights of the interest it activates (its best ``o_k . e_i``), the
  ``--max_categories`` most clicked categories (Figure 3b);
- where the truth is known (``--truth``: a JSON file mapping each category name to the
  profile fields it truly depends on, or ``--truth_key`` naming such a mapping inside it;
  for the generated benchmark, :mod:`recbole_umi.datasets.synth`, that is
  ``generator.json`` with ``--truth_key=summary.relevant_fields_by_category``),
  ``truth_recovery.json``: for each category, whether UMI's weights rank the
  fields that category truly depends on above the others (the AUC of the true relevant
  fields against the rest, 0.5 being chance), and the mean over categories; and the same
  with each field's weights centred on its mean over the categories (does a field's weight
  rise where it matters?), with a permutation p-value (:func:`field_recovery`).

Needs a UMI with interest refinement (``use_ir: True``) and matplotlib for the picture.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recbole_umi.checkpoint import load  # noqa: E402
from recbole_umi.evaluation import evaluated_users  # noqa: E402
from recbole_umi.files import write_atomic, write_csv_atomic, write_figure  # noqa: E402
from recbole_umi.item_file import TITLE_FIELDS, item_categories, item_file_columns  # noqa: E402
from recbole_umi.model.umi import UMI  # noqa: E402
from recbole_umi.retrieval import InterestRetriever  # noqa: E402

__all__ = ["InterpretError", "interpret", "read_truth", "field_recovery", "draw_field_weights", "main"]


class InterpretError(ValueError):
    """The checkpoint or the data cannot be interpreted (not UMI, no IR, no category field)."""


def _aucs(weights_by_category: np.ndarray, relevant: np.ndarray) -> list[float]:
    aucs = []
    for weights, truth in zip(weights_by_category, relevant):
        if np.isnan(weights).any() or truth.all() or not truth.any():
            aucs.append(float("nan"))
            continue
        pos, neg = weights[truth], weights[~truth]
        aucs.append(float(((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())))
    return aucs


def field_recovery(weights_by_category: np.ndarray, relevant: np.ndarray, permutations: int = 2000,
                   seed: int = 0) -> dict:
    """Whether the weights find each category's truly relevant fields, two ways.

    ``auc_by_category`` / ``mean_auc``: per category, the AUC of its relevant fields' weights
    against the other fields' (1: every relevant field weighted above every other, 0.5:
    chance). A field the model weights high everywhere counts against it here, although a
    weight that multiplies an embedding the model learns says nothing by its level alone.

    ``centred_auc_by_category`` / ``centred_mean_auc``: the same on each field's weights less
    their mean over the categories: does a field's weight rise for the categories that depend
    on it (the paper's reading of Figure 3b)? ``centred_p`` is its one-sided permutation
    p-value: the share of ``permutations`` draws, the categories' truth rows shuffled among
    them (seeded), with a mean at least as high (``(hits + 1) / (permutations + 1)``).

    Args:
        weights_by_category: ``categories x fields`` mean weights (NaN rows are skipped).
        relevant: ``categories x fields`` bool, the truth.
    """
    aucs = _aucs(weights_by_category, relevant)
    rows = ~np.isnan(weights_by_category).any(axis=1)
    centred = np.full_like(weights_by_category, np.nan, dtype=float)
    centred[rows] = weights_by_category[rows] - weights_by_category[rows].mean(axis=0)
    centred_aucs = _aucs(centred, relevant)
    observed = float(np.nanmean(centred_aucs))
    rng = np.random.default_rng(seed)
    kept = np.flatnonzero(rows)
    hits = 0
    for _ in range(permutations):
        shuffled = relevant.copy()
        shuffled[kept] = relevant[rng.permutation(kept)]
        hits += np.nanmean(_aucs(centred, shuffled)) >= observed - 1e-12
    return {"auc_by_category": aucs, "mean_auc": float(np.nanmean(aucs)),
            "centred_auc_by_category": centred_aucs, "centred_mean_auc": observed,
            "centred_p": (hits + 1) / (permutations + 1), "permutations": permutations}


def read_truth(path, key: str | None = None) -> dict[str, list[str]]:
    """The mapping category name -> relevant profile fields in the JSON file ``path``, at the
    dotted ``key`` inside it (``"summary.relevant_fields_by_category"``), or the whole file."""
    truth = json.loads(Path(path).read_text())
    for part in key.split(".") if key else []:
        if not isinstance(truth, dict) or part not in truth:
            raise InterpretError(f"{path} has no {key!r} (at {part!r})")
        truth = truth[part]
    if not isinstance(truth, dict) or not all(isinstance(v, list) for v in truth.values()):
        raise InterpretError(f"{path}{f' at {key!r}' if key else ''} is not a mapping of category names to lists of fields")
    return truth


def interpret(checkpoint, out, category_field: str, users=None, n_users: int = 5, top: int = 10,
              max_categories: int = 12, data_path=None, relevant_fields: dict[str, list[str]] | None = None) -> Path:
    """Write the files of the module's text to ``out``; returns ``out``. ``relevant_fields``:
    the truth, category name -> the profile fields it depends on (:func:`read_truth`), for
    ``truth_recovery.json``."""
    # on the CPU: the test batches and the numpy arrays below are there (a GPU gains nothing here)
    loaded = load(checkpoint, data_path=data_path, config_dict={"state": "ERROR", "use_gpu": False})
    config, model, dataset = loaded.config, loaded.model, loaded.dataset
    if not isinstance(model, UMI) or not model.use_ir:
        raise InterpretError(f"{config['model']} is not a UMI with interest refinement (use_ir): no field weights to show")
    if config["eval_protocol"] != "user_split":
        raise InterpretError("the checkpoint was trained under eval_protocol recbole: this reads user_split test users")
    columns = item_file_columns(config)
    if columns is None or category_field not in columns:
        raise InterpretError(f"the dataset's .item file has no column {category_field!r}")
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    names, categories = item_categories(columns, config, tokens, category_field)
    title_field = next((name for name in TITLE_FIELDS if name in columns), None)
    titles = dict(zip(columns[config["ITEM_ID_FIELD"]], columns[title_field])) if title_field else {}
    fields = list(model.profile.fields)

    user_tokens = evaluated_users(loaded.test_data)
    missing = [str(u) for u in (users or []) if str(u) not in user_tokens]
    if missing:
        raise InterpretError(f"not test users of this split: {', '.join(missing)}")

    explained = _explain_test_users(model, loaded.test_data)
    item_vectors = model.item_embeddings().detach().numpy()
    counts, mean_weights = _weights_by_category(explained, item_vectors, categories, len(names), len(fields))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "field_weights_by_category.csv", [["category", "clicked_items", *fields]] + [
        [name, int(count), *(f"{w:.4f}" for w in row)] for name, count, row in zip(names, counts, mean_weights)])
    draw_field_weights(out / "field_weights_by_category.csv", out / "field_weights_by_category.png",
                       f"{config['model']} on {config['dataset']}: Eq 7 weight of the activated interest, by clicked "
                       "category", max_categories, relevant_fields)

    # the case study of chosen users
    chosen = [user_tokens.index(str(u)) for u in users] if users else list(range(min(n_users, len(user_tokens))))
    retriever = InterestRetriever(item_vectors)
    catalog = {"tokens": tokens, "titles": titles, "names": names, "categories": categories, "fields": fields}
    cases = [{"user": user_tokens[row], **_case_study(explained, row, retriever, top, catalog)} for row in chosen]
    write_atomic(out / "users.json", json.dumps(cases, indent=2) + "\n")

    if relevant_fields is not None:
        known = [name for name in names if name in relevant_fields]
        if not known:
            raise InterpretError(f"the truth names no category of {category_field!r} (its categories: {names[:5]} ...)")
        relevant = np.array([[field in relevant_fields.get(name, ()) for field in fields] for name in names], dtype=bool)
        recovery = field_recovery(mean_weights, relevant)
        recovery["categories"] = names
        write_atomic(out / "truth_recovery.json", json.dumps(recovery, indent=2) + "\n")
    return out


def _explain_test_users(model, test_data) -> dict[str, np.ndarray]:
    """Every test user through the model (:meth:`UMI.explain`): ``history`` (``U x T`` item
    ids), ``attention`` (UGANet's a_i, or 1 for every real item without DAR), ``routing``
    (``U x T x K``), ``field_weights`` (``U x K x C``), ``interests`` (``U x K x d``)."""
    parts: dict[str, list] = {"history": [], "attention": [], "routing": [], "field_weights": [], "interests": []}
    with torch.no_grad():
        for interaction, *_ in test_data:
            explained = model.explain(interaction)
            parts["history"].append(interaction[model.ITEM_SEQ])
            parts["attention"].append(explained["item_attention"] if explained["item_attention"] is not None
                                      else (interaction[model.ITEM_SEQ] != 0).float())
            for key in ("routing", "field_weights", "interests"):
                parts[key].append(explained[key])
    return {key: torch.cat(values).numpy() for key, values in parts.items()}


def _weights_by_category(explained: dict, item_vectors: np.ndarray, categories: np.ndarray, n_categories: int,
                         n_fields: int) -> tuple[np.ndarray, np.ndarray]:
    """Figure 3b: each clicked item's categories get the Eq 7 weights of the interest the item
    activates most. Returns the clicks per category and the mean weights, ``n_categories x
    n_fields`` (NaN for a category nobody clicked)."""
    history, interests, field_weights = explained["history"], explained["interests"], explained["field_weights"]
    activated = np.einsum("btd,bkd->btk", item_vectors[history], interests).argmax(axis=-1)  # U x T
    sums = np.zeros((n_categories, n_fields))
    counts = np.zeros(n_categories)
    for b, t in zip(*np.nonzero(history > 0)):
        cats = categories[history[b, t]]
        sums[cats] += field_weights[b, activated[b, t]]
        counts[cats] += 1
    with np.errstate(invalid="ignore"):
        return counts, sums / counts[:, None]


def _case_study(explained: dict, row: int, retriever: InterestRetriever, top: int, catalog: dict) -> dict:
    """One test user's history (items, categories, attention, routing) and interests (field
    weights, the top items each interest alone retrieves and their dominating category)."""
    tokens, titles, names, categories = catalog["tokens"], catalog["titles"], catalog["names"], catalog["categories"]
    history, interests = explained["history"], explained["interests"]
    _, found = retriever.search(interests[row][:, None, :], top)  # each interest alone
    case = {"history": [], "interests": []}
    for t in np.flatnonzero(history[row] > 0):
        item = int(history[row, t])
        case["history"].append({"item": tokens[item], "title": titles.get(tokens[item]),
                                "categories": [names[c] for c in np.flatnonzero(categories[item])],
                                "attention": round(float(explained["attention"][row, t]), 4),
                                "routing": [round(float(w), 4) for w in explained["routing"][row, t]]})
    for k in range(interests.shape[1]):
        items = [int(i) for i in found[k] if i >= 0]
        cat_counts = categories[items].sum(axis=0)
        case["interests"].append({
            "field_weights": {field: round(float(w), 4)
                              for field, w in zip(catalog["fields"], explained["field_weights"][row, k])},
            "dominating_category": names[int(cat_counts.argmax())] if items else None,
            "top_items": [{"item": tokens[i], "title": titles.get(tokens[i]),
                           "categories": [names[c] for c in np.flatnonzero(categories[i])]} for i in items],
        })
    return case


def draw_field_weights(csv_path, png_path, title: str, max_categories: int = 12,
                       relevant_fields: dict[str, list[str]] | None = None) -> Path:
    """The heatmap of ``field_weights_by_category.csv``: the categories with the most clicks
    (up to ``max_categories``), each field's mean weight minus the category's mean over its
    fields (what the category weighs more or less than its others), and, given the truth
    (``relevant_fields``), a box on every field the category truly depends on, so that
    whether the weights find them can be seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Path(csv_path).open(newline="") as handle:
        rows = list(csv.reader(handle))
    fields = rows[0][2:]
    ordered = sorted(rows[1:], key=lambda row: -int(row[1]))[:max_categories]
    names = [row[0] for row in ordered]
    values = np.array([[float(v) if v != "nan" else np.nan for v in row[2:]] for row in ordered])
    centred = values - np.nanmean(values, axis=1, keepdims=True)
    limit = np.nanmax(np.abs(centred)) or 1.0
    figure, axes = plt.subplots(figsize=(max(6.0, 2.2 + 0.34 * len(fields)), 1.6 + 0.2 * len(names)))
    image = axes.imshow(centred, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_xticks(range(len(fields)), fields, rotation=90, fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 20 else 8)
    axes.set_xlabel("profile field", fontsize=9)
    axes.set_ylabel("clicked item category (most clicked first)", fontsize=9)
    if relevant_fields:
        for row, name in enumerate(names):
            for field in relevant_fields.get(name, ()):
                if field in fields:
                    axes.add_patch(plt.Rectangle((fields.index(field) - 0.5, row - 0.5), 1, 1, fill=False,
                                                 edgecolor="black", linewidth=1.4))
        title += "\nboxed: the fields the category truly depends on"
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, label="mean field weight d_kc minus the category's mean", shrink=0.6)
    figure.tight_layout()
    write_figure(png_path, figure, dpi=100, bbox_inches="tight")
    return Path(png_path)


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m recbole_umi.interpret", description="What a trained UMI attends to (the paper's Figures 3b to 5).")
    parser.add_argument("checkpoint", nargs="?", help="a UMI checkpoint (not with --redraw)")
    parser.add_argument("out")
    parser.add_argument("--category_field", default=None, help="item field of categories (e.g. genre); required "
                        "but with --redraw")
    parser.add_argument("--redraw", default="False", choices=("True", "False"),
                        help="draw OUT's field_weights_by_category.png again from its CSV (no checkpoint)")
    parser.add_argument("--title", default="UMI: Eq 7 weight of the activated interest, by clicked category",
                        help="the heatmap's title with --redraw")
    parser.add_argument("--users", default=None, help="test users' original ids, comma-separated")
    parser.add_argument("--n_users", type=int, default=5, help="else the first N test users")
    parser.add_argument("--top", type=int, default=10, help="items retrieved per interest")
    parser.add_argument("--max_categories", type=int, default=12, help="categories in the heatmap")
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--truth", default=None, help="JSON file: category name -> the profile fields it depends on")
    parser.add_argument("--truth_key", default=None, help="dotted key of that mapping inside the file "
                        "(the generated benchmark's generator.json: summary.relevant_fields_by_category)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    users = args.users.split(",") if args.users else None
    truth = read_truth(args.truth, args.truth_key) if args.truth else None
    out = Path(args.out)
    if args.redraw == "True":
        path = draw_field_weights(out / "field_weights_by_category.csv", out / "field_weights_by_category.png",
                                  args.title, args.max_categories, truth)
        print(f"written: {path}")
        return out
    if args.checkpoint is None or args.category_field is None:
        parser.error("give a checkpoint and --category_field (or --redraw=True)")
    out = interpret(args.checkpoint, args.out, args.category_field, users, args.n_users, args.top,
                    args.max_categories, args.data_path, truth)
    print(f"written to {out}")
    return out
