"""The figure at the top of docs/results.md: test HitRate@50 of every model of a compare
folder, with intervals that count the test users and the training seeds.

    python scripts/results_figure.py results/ml-1m-tuned --models=UMI,YoutubeDNN,... \\
        [--seeds=2020,...] [--metric=recall@50] [--paper=27.805] [--out=docs/results_hr50.png]

Left: each model's mean over its seeds and users, with the 95% interval of
:func:`recbole_umi.stats.two_level_mean`. Right: each model minus the first one, with the
95% interval of :func:`recbole_umi.stats.two_level_test`, filled where the difference stays
significant after Holm's correction over the comparisons.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.config import comma_list  # noqa: E402
from recbole_umi.experiments.run_files import read_runs, same_users  # noqa: E402
from recbole_umi.files import write_figure  # noqa: E402
from recbole_umi.stats import LEVEL, holm, two_level_mean, two_level_test  # noqa: E402


def per_seed(runs: list[dict], metric: str) -> np.ndarray:
    """``seeds x users`` values of ``metric`` in percent in ``runs`` (a model's, one a seed)."""
    return 100 * np.array([r["test_per_user"][metric] for r in runs])


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a compare folder with runs/")
    parser.add_argument("--models", required=True, help="comma-separated; the differences are against the first")
    parser.add_argument("--seeds", default="2020,2021,2022,2023,2024")
    parser.add_argument("--metric", default="recall@50", help="RecBole's name (recall@50 is the paper's HitRate@50)")
    parser.add_argument("--label", default="HitRate@50")
    parser.add_argument("--paper", type=float, default=None, help="the paper's figure for the first model, drawn as a line")
    parser.add_argument("--title", default="")
    parser.add_argument("--out", default="docs/results_hr50.png")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder, models, seeds = Path(args.folder), comma_list(args.models), comma_list(args.seeds, int)
    runs = {model: read_runs(folder, model, seeds) for model in models}
    same_users(*runs.values(), names=list(runs))  # the two-level tests pair each user with the same user
    values = {model: per_seed(runs[model], args.metric) for model in models}
    means = {model: two_level_mean(values[model]) for model in models}
    first = models[0]
    differences = {model: two_level_test(values[model], values[first]) for model in models[1:]}
    adjusted = dict(zip(differences, holm([d["p"] for d in differences.values()])))

    order = sorted(models, key=lambda m: means[m]["mean"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(models) + 1.6), sharey=True)
    rows = np.arange(len(order))
    for row, model in zip(rows, order):
        m = means[model]
        left.errorbar(m["mean"], row, xerr=[[m["mean"] - m["low"]], [m["high"] - m["mean"]]], fmt="o",
                      color="tab:blue", capsize=3)
        left.annotate(f"{m['mean']:.2f}", (m["high"], row), xytext=(4, -3), textcoords="offset points", fontsize=8)
    if args.paper is not None:
        left.axvline(args.paper, color="grey", linestyle=":", linewidth=1)
        left.annotate(f"paper's {first}: {args.paper:g}", (args.paper, 0.5), xytext=(3, 0),
                      textcoords="offset points", fontsize=8, color="grey")
    left.set_yticks(rows, order)
    left.set_xlabel(f"test {args.label} (%), mean over {len(seeds)} seeds and the test users, 95% interval")
    left.grid(axis="x", alpha=0.3)
    for row, model in zip(rows, order):
        if model == first:
            right.plot(0, row, marker="|", color="black", markersize=12)
            continue
        d = differences[model]
        significant = adjusted[model] < LEVEL
        right.errorbar(d["delta"], row, xerr=[[d["delta"] - d["low"]], [d["high"] - d["delta"]]],
                       fmt="o" if significant else "o", mfc="tab:red" if significant else "white",
                       color="tab:red" if significant else "tab:grey", capsize=3)
        right.annotate(f"{d['delta']:+.2f}", (d["high"], row), xytext=(4, -3), textcoords="offset points", fontsize=8)
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel(f"model minus {first} (points), 95% two-level interval;\nfilled: significant after Holm "
                     f"over {len(differences)} comparisons")
    right.grid(axis="x", alpha=0.3)
    if args.title:
        figure.suptitle(args.title, fontsize=10)
    figure.tight_layout()
    out = Path(args.out)
    write_figure(out, figure, dpi=110, bbox_inches="tight")
    print(f"written: {out}")
    return out


if __name__ == "__main__":
    main()
