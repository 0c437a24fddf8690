"""Accuracy against category coverage of the diversity re-ranking, on a trained model's test users.

    python scripts/diversity.py CHECKPOINT --category_field=genre --out=results/ml-1m-diversity \\
        [--data_path=../shared/data] [--lambdas=0,0.05,0.1,0.2,0.5,1] [--n=50] [--candidates=250]

For each test user of the checkpoint's split: the exact top ``candidates`` items of the
model's max-over-interests score (a faiss search of every interest), re-ranked greedily by
:func:`recbole_umi.retrieval.diversify` for each lambda, cut to the top ``n``. Reports, as
means over the test users: HitRate@n (RecBole's recall@n: the share of the user's held-out
items in the list), the share of all categories the list covers, and the share of the
list's item pairs that share no category. With lambda 0 the lists are the model's own top
n, so HitRate@n must equal the checkpoint's test recall@n (checked). Writes
``diversity.json`` and ``diversity.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.checkpoint import evaluate_checkpoint, load  # noqa: E402
from recbole_umi.files import write_atomic  # noqa: E402
from recbole_umi.item_file import item_categories, item_file_columns  # noqa: E402
from recbole_umi.retrieval import InterestRetriever, category_coverage, diversify  # noqa: E402


def pairs_apart(item_ids: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Per user, the share of pairs of listed items that share no category."""
    shares = []
    for ids in item_ids:
        cats = categories[ids[ids >= 0]].astype(np.float32)
        shared = (cats @ cats.T) > 0
        n = len(cats)
        shares.append(1 - (shared.sum() - n) / (n * (n - 1)) if n > 1 else np.nan)
    return np.array(shares)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--category_field", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--lambdas", default="0,0.05,0.1,0.2,0.5,1")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=250)
    args = parser.parse_args(argv)
    lambdas = [float(x) for x in args.lambdas.split(",")]

    # on the CPU: the test batches and the numpy arrays below are there
    loaded = load(args.checkpoint, data_path=args.data_path, config_dict={"state": "ERROR", "use_gpu": False})
    config, model, dataset = loaded.config, loaded.model, loaded.dataset
    if config["eval_protocol"] != "user_split":
        raise SystemExit("the checkpoint was trained under eval_protocol recbole: this script reads user_split test users")
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    names, categories = item_categories(item_file_columns(config), config, tokens, args.category_field)
    retriever = InterestRetriever(model.item_embeddings().detach())
    test = loaded.test_data
    interests, targets = [], []
    with torch.no_grad():
        for interaction, _, positive_u, positive_i in test:
            interests.append(model(interaction))
            targets += [positive_i[positive_u == row].numpy() for row in range(len(interaction))]
    interests = torch.cat(interests)
    scores, ids = retriever.search(interests, args.candidates)
    rows = []
    for lam in lambdas:
        _, picked = diversify(scores, ids, categories, args.n, lam)
        hit_rate = np.array([np.isin(t, p).sum() / len(t) for p, t in zip(picked, targets)])
        rows.append({
            "lambda": lam,
            f"hit_rate@{args.n}": float(hit_rate.mean()),
            "hit_rate_se": float(hit_rate.std(ddof=1) / np.sqrt(len(hit_rate))),
            "category_coverage": float(category_coverage(picked, categories).mean()),
            "pairs_apart": float(np.nanmean(pairs_apart(picked, categories))),
        })
        print(json.dumps(rows[-1]), flush=True)
    saved = loaded.info["best_valid_result"]
    report = {"checkpoint": loaded.info, "model": config["model"], "dataset": config["dataset"],
              "category_field": args.category_field, "n_categories": len(names), "n_users": len(targets),
              "n": args.n, "candidates": args.candidates, "rows": rows}
    if 0.0 in lambdas:  # the model's own top n: RecBole's test figure for this checkpoint
        recbole = evaluate_checkpoint(args.checkpoint, data_path=args.data_path, config_dict={"state": "ERROR",
                                      "topk": [args.n], "metrics": ["Recall"], "valid_metric": f"Recall@{args.n}"})
        expected = recbole["test_result"][f"recall@{args.n}"]
        got = rows[lambdas.index(0.0)][f"hit_rate@{args.n}"]
        if abs(got - expected) > 1e-4:  # RecBole rounds to 4 decimals
            raise SystemExit(f"lambda 0 gives HitRate@{args.n} {got:.5f}, RecBole's evaluation {expected:.4f}")
        report["recbole_test_recall"] = expected
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "diversity.json", json.dumps(report, indent=2) + "\n")
    lines = [
        f"{config['model']} on {config['dataset']} ({len(targets)} test users), top {args.n} re-ranked from the "
        f"exact top {args.candidates} by `{args.category_field}` ({len(names)} categories). Checkpoint "
        f"{Path(loaded.info['path']).name}, best validation recall@{args.n} {saved.get(f'recall@{args.n}', float('nan')):.4f}.",
        "",
        f"| lambda | HitRate@{args.n} (± s.e.) | category coverage | pairs sharing no category |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['lambda']:g} | {100 * row[f'hit_rate@{args.n}']:.2f} ± {100 * row['hit_rate_se']:.2f} | "
                     f"{100 * row['category_coverage']:.1f}% | {100 * row['pairs_apart']:.1f}% |")
    write_atomic(out / "diversity.md", "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
