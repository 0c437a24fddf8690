"""The cold-start curve: test metrics against the number k of a held-out user's first
interactions the model sees, from runs made with ``eval_history_curve`` (each run file
holds its model evaluated at every k).

    python scripts/cold_start_curve.py results/ml-1m-coldstart --models=UMI,MIND+HN,... \\
        [--seeds=2021,2022,2023] [--metrics=recall@10,recall@50,recall@300] [--out=results/ml-1m-coldstart/curve]

For every model and k: the mean over the seeds and test users with its 95% interval
(:func:`recbole_umi.stats.two_level_mean`, counting users and seeds), and the mean
validation figure (what a choice between models at that k would be made on). Then, at every
k, the first model minus each other one with the two-level test
(:func:`recbole_umi.stats.two_level_test`), Holm's correction over the comparisons at that
k and metric. The column "all" is the run's own test, the paper's protocol (the first
``history_share`` of a user's sequence as history, 90% unless a run set another). Writes
``OUT.md``, ``OUT.csv`` and ``OUT.png`` (the first metric against k, one line per model with
its intervals) and prints the markdown.
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
from recbole_umi.files import write_atomic, write_csv_atomic, write_figure  # noqa: E402
from recbole_umi.metrics import metric_column  # noqa: E402
from recbole_umi.provenance import code_listing, code_records  # noqa: E402
from recbole_umi.stats import LEVEL, holm, two_level_mean, two_level_test  # noqa: E402

PAPER_CUT = "all"  # the column of the runs' own test: the paper's history cut


def label(metric: str) -> str:
    return metric_column(metric, "user_split")


def read_curves(folder: Path, models: list[str], seeds: list[int], codes: list | None = None,
                extra: dict[str, tuple[Path, str]] | None = None) -> dict:
    """``{model: {k: {"test": seeds x users per metric, "valid": [per-seed dicts], "users",
    "records": [per-seed dicts of seed, test_per_user and valid]}}}``; k is a string,
    ``"all"`` for the run's own test. A model without every seed's run is left out. ``codes``
    gets each run's name and code record. ``extra``: ``{label: (folder, model)}``, runs of
    other folders (other training settings) shown as ``label``."""
    curves = {}
    codes = [] if codes is None else codes
    sources = {model: (folder, model) for model in models} | dict(extra or {})
    for model, (where, variant) in sources.items():
        if not all(run_file(where, variant, seed).exists() for seed in seeds):
            continue
        runs = read_runs(where, variant, seeds)
        codes.extend(record for seed, r in zip(seeds, runs) for record in code_records(f"{model} seed {seed}", r))
        if not all(r.get("history_curve") for r in runs):
            raise ValueError(f"{variant}'s runs in {where} were made without eval_history_curve")
        points = {k: [{"seed": seed, **r["history_curve"][k]} for seed, r in zip(seeds, runs)]
                  for k in runs[0]["history_curve"]}
        points[PAPER_CUT] = [{"seed": seed, "test_per_user": r["test_per_user"], "valid": r["best_valid_result"]}
                             for seed, r in zip(seeds, runs)]
        curves[model] = {}
        for k, per_seed in points.items():
            users = same_users(per_seed, names=[f"{model} at k = {k}"])
            curves[model][k] = {"users": users, "valid": [p["valid"] for p in per_seed], "records": per_seed,
                                "test": {m: 100 * np.array([p["test_per_user"][m] for p in per_seed])
                                         for m in per_seed[0]["test_per_user"] if m not in ("user", "history_length")}}
    return curves


def curve_table(curves: dict, metrics: list[str]) -> tuple[str, list[list[str]], dict]:
    models = list(curves)
    ks = sorted({k for c in curves.values() for k in c if k != PAPER_CUT}, key=int) + [PAPER_CUT]
    first = models[0]
    header = "| model | metric | " + " | ".join(f"k = {k}" if k != PAPER_CUT else "all (paper)" for k in ks) + " |"
    lines = [
        "Test metrics in percent against k, the number of a held-out user's first interactions the model sees "
        "(0: the profile alone; \"all (paper)\": the first 90% of the sequence, the paper's protocol): mean over the "
        "seeds and test users [95% interval counting both, recbole_umi.stats.two_level_mean]; below each, the mean "
        "best-validation value of the same cell (valid).",
        "",
        header,
        "| --- | --- |" + " --- |" * len(ks),
    ]
    rows = [["model", "metric", "k", "mean", "low", "high", "valid", "n_users"]]
    means: dict = {}
    for model in models:
        for metric in metrics:
            cells, valid_cells = [], []
            for k in ks:
                point = curves[model].get(k)
                if point is None:
                    cells.append("-")
                    valid_cells.append("-")
                    continue
                m = two_level_mean(point["test"][metric])
                valid = 100 * np.mean([v[metric] for v in point["valid"]])
                means[model, metric, k] = m
                cells.append(interval_text(m["mean"], m["low"], m["high"]))
                valid_cells.append(f"{valid:.2f}")
                rows.append([model, label(metric), k, f"{m['mean']:.4f}", f"{m['low']:.4f}", f"{m['high']:.4f}",
                             f"{valid:.4f}", str(len(point["users"]))])
            lines.append(f"| {model} | {label(metric)} | " + " | ".join(cells) + " |")
            lines.append("| | valid | " + " | ".join(valid_cells) + " |")
    lines += ["", f"{first} minus each model at each k, in points: difference [95% two-level interval] and p; "
              f"* p < {LEVEL}, † also after Holm's correction over the {len(models) - 1} comparisons at that k and "
              "metric; - where a model has no figure at that k.", "",
              "| vs | metric | " + " | ".join(f"k = {k}" if k != PAPER_CUT else "all (paper)" for k in ks) + " |",
              "| --- | --- |" + " --- |" * len(ks)]
    for k in ks:  # the two-level test pairs each test user of the first model with the same user
        for m in [m for m in models[1:] if k in curves[m] and k in curves[first]]:
            same_users(curves[first][k]["records"], curves[m][k]["records"],
                       names=[f"{first} at k = {k}", f"{m} at k = {k}"])
    tests = {}
    for metric in metrics:
        for k in ks:
            others = [m for m in models[1:] if k in curves[m] and k in curves[first]]
            found = {m: two_level_test(curves[first][k]["test"][metric], curves[m][k]["test"][metric]) for m in others}
            for m, p_holm in zip(found, holm([t["p"] for t in found.values()])):
                tests[m, metric, k] = {**found[m], "p_holm": p_holm}
    for model in models[1:]:
        for metric in metrics:
            cells = []
            for k in ks:
                t = tests.get((model, metric, k))
                if t is None:
                    cells.append("-")
                    continue
                marks = ("*" if t["p"] < LEVEL else "") + ("†" if t["p_holm"] < LEVEL else "")
                cells.append(f"{interval_text(t['delta'], t['low'], t['high'], signed=True)} p={t['p']:.2g}{marks}")
            lines.append(f"| {model} | {label(metric)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", rows, means


def plot(curves: dict, means: dict, metric: str, title: str):
    """Left: the metric against k (the cold-start curve); right, on its own scale: the same
    models under the paper's protocol. Models of another folder (``--extra``, e.g. trained
    with history dropout) are dashed when their label has a space ("UMI dropout 0.5")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted({k for c in curves.values() for k in c if k != PAPER_CUT}, key=int)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [4, 1.2]})
    positions = {k: i for i, k in enumerate(ks)}
    shift = np.linspace(-0.2, 0.2, len(curves))
    colours = plt.get_cmap("tab20").colors
    for index, (offset, model) in enumerate(zip(shift, curves)):
        style = {"color": colours[index % len(colours)], "linestyle": "--" if " " in model else "-",
                 "marker": "os^vDP*X"[index % 8], "markersize": 4, "capsize": 2, "label": model}
        found = [k for k in ks if (model, metric, k) in means]
        points = [means[model, metric, k] for k in found]
        left.errorbar([positions[k] + offset for k in found], [m["mean"] for m in points],
                      yerr=[[m["mean"] - m["low"] for m in points], [m["high"] - m["mean"] for m in points]], **style)
        if (model, metric, PAPER_CUT) in means:
            m = means[model, metric, PAPER_CUT]
            right.errorbar([offset], [m["mean"]], yerr=[[m["mean"] - m["low"]], [m["high"] - m["mean"]]],
                           **{**style, "label": None})
    left.set_xticks(range(len(ks)), ks)
    left.set_xlabel("k: a held-out user's first k interactions are the model's input (0: the profile alone)")
    left.set_ylabel(f"test {label(metric)} (%), 95% interval over users and seeds")
    left.grid(alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    left.set_title(title, fontsize=10)
    right.set_xticks([0], ["paper's protocol\n(first 90%)"])
    right.set_xlim(-0.5, 0.5)
    right.grid(alpha=0.3)
    right.set_title("own scale", fontsize=9)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a compare folder whose runs were made with eval_history_curve")
    parser.add_argument("--models", required=True, help="comma-separated; the first is tested against the others")
    parser.add_argument("--seeds", default="2021,2022,2023")
    parser.add_argument("--metrics", default="recall@10,recall@50,recall@300",
                        help="RecBole's names (recall@N is the paper's HitRate@N); the first is drawn")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", required=True, help="writes OUT.md, OUT.csv, OUT.png")
    parser.add_argument("--allow_mixed_code", default="False", choices=("True", "False"),
                        help="put runs of different code versions in one curve (the table lists them)")
    parser.add_argument("--extra", action="append", default=[], metavar="LABEL=FOLDER:MODEL",
                        help="also MODEL's runs in FOLDER (e.g. trained with history_dropout), shown as LABEL")
    args = parser.parse_args(argv)
    folder, seeds, metrics = Path(args.folder), comma_list(args.seeds, int), comma_list(args.metrics)
    extra = {}
    for given in args.extra:
        name, _, source = given.partition("=")
        where, _, model = source.rpartition(":")
        if not (name and where and model and Path(where, "runs").is_dir()):
            parser.error(f"--extra {given!r}: give LABEL=FOLDER:MODEL with runs/ in FOLDER")
        extra[name] = (Path(where), model)
    codes: list = []
    curves = read_curves(folder, comma_list(args.models), seeds, codes, extra)
    if not curves:
        parser.error(f"no model has runs of every seed in {folder / 'runs'}")
    markdown, rows, means = curve_table(curves, metrics)
    missing = [m for m in [*comma_list(args.models), *extra] if m not in curves]
    if missing:
        markdown += f"\nNot in the table (runs of some seed missing): {', '.join(missing)}.\n"
    markdown += "\n" + "\n".join(code_listing(codes, f"the curve of {folder}", args.allow_mixed_code == "True")) + "\n"
    title = args.title or f"{folder.name}: {len(seeds)} seeds ({args.seeds})"
    write_atomic(f"{args.out}.md", markdown)
    write_csv_atomic(f"{args.out}.csv", rows)
    write_figure(f"{args.out}.png", plot(curves, means, metrics[0], title), dpi=110)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
