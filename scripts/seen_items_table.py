"""Seen items left out: each model's test metrics under the paper's protocol (which ranks the
user's own history too) beside the same model's with each user's history left out, from runs
made with ``also_exclude_history: True`` (the ``unseen`` entry of a run file).

    python scripts/seen_items_table.py results/ml-1m-coldstart --models=UMI,MIND+HN,... \\
        [--seeds=2021,2022,2023] [--metrics=recall@10,recall@50,recall@300] [--out=results/ml-1m-coldstart/seen_items]

For every model and metric: the mean over the seeds and test users under each protocol, with
the 95% interval of :func:`recbole_umi.stats.two_level_mean`, and the gain of leaving the
history out (the same model and users: its two-level test with a seed's two figures paired).
Writes ``OUT.md`` and ``OUT.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.config import comma_list  # noqa: E402
from recbole_umi.experiments.run_files import read_runs, run_file, same_users  # noqa: E402
from recbole_umi.experiments.tables import interval_text  # noqa: E402
from recbole_umi.files import write_atomic, write_csv_atomic  # noqa: E402
from recbole_umi.metrics import metric_column  # noqa: E402
from recbole_umi.provenance import code_listing, code_records  # noqa: E402
from recbole_umi.stats import two_level_mean, two_level_test  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--models", required=True)
    parser.add_argument("--seeds", default="2021,2022,2023")
    parser.add_argument("--metrics", default="recall@10,recall@50,recall@300")
    parser.add_argument("--out", required=True, help="writes OUT.md and OUT.csv")
    parser.add_argument("--allow_mixed_code", default="False", choices=("True", "False"),
                        help="tabulate runs of several code versions (listed under the table)")
    args = parser.parse_args(argv)
    folder, seeds, metrics = Path(args.folder), comma_list(args.seeds, int), comma_list(args.metrics)
    label = {m: metric_column(m, "user_split") for m in metrics}
    lines = [
        "Test metrics in percent under the paper's protocol (the whole catalogue ranked, the user's history "
        "included) and with each user's history left out of its ranking, as a deployment would; the same models "
        f"(seeds {args.seeds}), mean [95% two-level interval over users and seeds]; the gain: history left out "
        "minus the paper's, a seed's two figures paired.",
        "",
        "| model | metric | paper's protocol | history left out | gain, points |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = [["model", "metric", "paper mean", "unseen mean", "gain", "gain low", "gain high", "p"]]
    codes, missing = [], []
    for model in comma_list(args.models):
        if not all(run_file(folder, model, seed).exists() for seed in seeds):
            missing.append(model)
            continue
        runs = read_runs(folder, model, seeds)
        if not all(r.get("unseen") for r in runs):
            raise ValueError(f"{model}'s runs were made without also_exclude_history")
        # the gain's test pairs each user's two figures: the same users, in the same order, under both protocols
        same_users(runs, [{"seed": seed, **r["unseen"]} for seed, r in zip(seeds, runs)],
                   names=[f"{model} (paper's protocol)", f"{model} (history left out)"])
        codes += [record for seed, r in zip(seeds, runs) for record in code_records(f"{model} seed {seed}", r)]
        for metric in metrics:
            paper = 100 * np.array([r["test_per_user"][metric] for r in runs])
            unseen = 100 * np.array([r["unseen"]["test_per_user"][metric] for r in runs])
            a, b = two_level_mean(paper), two_level_mean(unseen)
            gain = two_level_test(unseen, paper, paired_seeds=True)
            lines.append(f"| {model} | {label[metric]} | {interval_text(a['mean'], a['low'], a['high'])} | "
                         f"{interval_text(b['mean'], b['low'], b['high'])} | "
                         f"{interval_text(gain['delta'], gain['low'], gain['high'], signed=True)} p={gain['p']:.2g} |")
            rows.append([model, label[metric], f"{a['mean']:.4f}", f"{b['mean']:.4f}", f"{gain['delta']:.4f}",
                         f"{gain['low']:.4f}", f"{gain['high']:.4f}", f"{gain['p']:.4g}"])
    if missing:
        lines += ["", f"Not in the table (runs of some seed missing): {', '.join(missing)}."]
    lines += ["", *code_listing(codes, f"the table of {folder}", args.allow_mixed_code == "True")]
    markdown = "\n".join(lines) + "\n"
    write_atomic(f"{args.out}.md", markdown)
    write_csv_atomic(f"{args.out}.csv", rows)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
