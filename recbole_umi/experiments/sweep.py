"""One setting swept over values, with a figure (the paper's Figure 2: the number of interests).

    python -m recbole_umi.sweep --model=UMI --setting=n_interests --values=2,3,4,5,6,7 \\
        --dataset=ml-1m --seeds=2020,2021,2022 --out=results/ml-1m-interests [--config_files=...]
        [--key=value ...]

For each value the model is trained and tested with every seed through
:func:`recbole_umi.experiments.runs.compare` (``OUT/<setting>=<value>/``), seed by seed (every value's
first seed before any second one); finished runs are kept, so an interrupted sweep resumes.
``OUT/sweep.csv`` holds, per value, the mean and standard deviation over the seeds of every
test metric, of every best validation metric (the ``valid ...`` columns: choose a value by
these, never by the test columns) and of the interest cosine and
routing overlap of a multi-interest model; ``OUT/sweep.png`` draws the test metrics against
the value, one panel per metric family (HitRate@N, Precision@N under the paper's protocol).
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from recbole_umi.experiments.runs import (  # noqa: E402
    add_policy_arguments,
    check_comparison,
    check_listed_once,
    compare,
    policy,
)
from recbole_umi.experiments.tables import mean_std, render_code, run_protocol, summarise  # noqa: E402
from recbole_umi.config import comma_list, parse_cmd_args  # noqa: E402
from recbole_umi.files import write_csv_atomic, write_figure  # noqa: E402
from recbole_umi.metrics import metric_columns  # noqa: E402

__all__ = ["sweep", "write_csv", "read_summary", "plot", "main"]


def sweep(model, setting, values, dataset, seeds, out, config_file_list=None, config_dict=None, log=print,
          allow_mixed_code: bool = False, allow_search_seed: bool = False) -> dict:
    """``{value: (columns, {column: (mean, std)})}`` over the runs of every value: the test
    metrics (percent), the best validation metrics (``valid HitRate@50``, ..., percent: the
    ones to choose a value by) and, for multi-interest models, the test users' mean interest
    cosine and routing overlap (``interest cosine``, ``routing overlap``,
    :func:`recbole_umi.evaluation.interest_diagnostics`). Runs of different code versions,
    in one value's folder or across values, are refused unless ``allow_mixed_code``; a seed
    that trained the search of a ``best.yaml`` among the files, unless ``allow_search_seed``."""
    out = Path(out)

    def settings(value):
        return {**(config_dict or {}), setting: value}

    def runs_of(value, seeds_now):
        folder = out / f"{setting}={value}"
        return compare([model], dataset, seeds_now, folder, config_file_list, settings(value), log=log,
                       allow_mixed_code=allow_mixed_code, allow_search_seed=allow_search_seed)

    check_listed_once("values", values, f"each value of {setting} is one row of the sweep")
    for value in values:  # every value's settings and finished runs, before anything trains
        check_comparison([model], dataset, seeds, out / f"{setting}={value}", config_file_list, settings(value),
                         allow_mixed_code=allow_mixed_code, allow_search_seed=allow_search_seed)
    for seed in seeds:  # seed by seed: a sweep cut short is complete for its first seeds
        for value in values:
            runs_of(value, [seed])
    every_run = {f"{setting}={value}": runs_of(value, seeds)[model] for value in values}  # all on disk now
    render_code(every_run, allow_mixed_code)  # MixedCodeError across the values' folders
    summary = {}
    for value in values:
        results = {model: every_run[f"{setting}={value}"]}
        columns, table = summarise(results)
        row = dict(table[model])
        runs = results[model]
        valid = [metric_columns(r["best_valid_result"], run_protocol(r)) for r in runs]
        for name in valid[0]:
            row[f"valid {name}"] = mean_std([100 * v[name] for v in valid])
        diagnostics = [r["interest_diagnostics"] for r in runs if r.get("interest_diagnostics")]
        if len(diagnostics) == len(runs):
            for key in ("interest_cosine", "routing_overlap"):
                if all(d.get(key) is not None for d in diagnostics):
                    row[key.replace("_", " ")] = mean_std([d[key] for d in diagnostics])
        summary[value] = (list(row), row)
    return summary


def _test_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if "@" in c and not c.startswith("valid ")]


def write_csv(summary: dict, setting: str, path: Path) -> None:
    """One row per value; a column that some values lack (the interest diagnostics of
    ``n_interests: 1``) is left empty there."""
    columns = list(dict.fromkeys(c for names, _ in summary.values() for c in names))
    rows = [[setting, *(f"{c} {stat}" for c in columns for stat in ("mean", "std"))]]
    for value, (_, row) in summary.items():
        cells = []
        for column in columns:
            cells += [f"{x:.4f}" for x in row[column]] if column in row else ["", ""]
        rows.append([value, *cells])
    write_csv_atomic(path, rows)


def read_summary(path: Path) -> tuple[str, dict]:
    """The setting and the summary a ``sweep.csv`` holds (:func:`write_csv`'s inverse), so
    that a figure can be drawn again without the runs."""
    import csv

    with Path(path).open(newline="") as handle:
        rows = list(csv.reader(handle))
    setting, *header = rows[0]
    columns = list(dict.fromkeys(name.rsplit(" ", 1)[0] for name in header))
    summary = {}
    for row in rows[1:]:
        cells = dict(zip(header, row[1:]))
        values = {c: (float(cells[f"{c} mean"]), float(cells[f"{c} std"])) for c in columns if cells[f"{c} mean"]}
        summary[yaml.safe_load(row[0])] = (list(values), values)
    return setting, summary


def plot(summary: dict, setting: str, title: str, path: Path, n_seeds: int) -> None:
    """One panel per metric and cut-off (each on its own scale, so that a point's difference
    shows), test (solid) and best validation (dashed), error bars of one standard deviation
    over the seeds (none with one seed). The values sit at even steps whatever their size:
    the axis is categorical, and says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = _test_columns(next(iter(summary.values()))[0])
    families = list(dict.fromkeys(c.split("@")[0] for c in columns))
    cutoffs = list(dict.fromkeys(c.split("@")[1] for c in columns))
    values = list(summary)
    figure, axes = plt.subplots(len(families), len(cutoffs), figsize=(3.3 * len(cutoffs), 2.6 * len(families)),
                                squeeze=False)
    positions = range(len(values))
    for row, family in enumerate(families):
        for col, cutoff in enumerate(cutoffs):
            axis, column = axes[row][col], f"{family}@{cutoff}"
            for name, style in ((column, "-"), (f"valid {column}", "--")):
                if name not in summary[values[0]][1]:
                    continue
                means = [summary[v][1][name][0] for v in values]
                stds = [summary[v][1][name][1] for v in values] if n_seeds > 1 else None
                axis.errorbar(positions, means, yerr=stds, marker="o", markersize=4, capsize=3, linestyle=style,
                              label="test" if name == column else "best validation")
            axis.set_xticks(positions, [str(v) for v in values])
            axis.set_title(column, fontsize=9)
            axis.set_xlabel(f"{setting} (categorical axis)", fontsize=8)
            axis.set_ylabel("%", fontsize=8)
            axis.grid(alpha=0.3)
            if row == 0 and col == 0:
                axis.legend(fontsize=7)
    spread = f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "one seed: no spread, no interval"
    figure.suptitle(f"{title} ({spread})", fontsize=10)
    figure.tight_layout()
    write_figure(path, figure, dpi=110, bbox_inches="tight")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_umi.sweep",
        allow_abbrev=False,  # passed-through --key=value settings must never be read as an abbreviated option
        description=__doc__.split("\n\n")[0] + " Further --key=value arguments set config keys.",
    )
    parser.add_argument("--model", required=True, help="a model or compare variant, e.g. UMI or MIND+HN")
    parser.add_argument("--setting", required=True, help="the config key swept, e.g. n_interests")
    parser.add_argument("--values", required=True, help="comma-separated values (read as YAML: 2, 0.5, True)")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--seeds", default="2020,2021,2022")
    parser.add_argument("--out", required=True)
    parser.add_argument("--config_files", default=None)
    add_policy_arguments(parser, ("allow_mixed_code", "allow_search_seed"))
    parser.add_argument("--redraw", default="False", choices=("True", "False"),
                        help="draw sweep.png again from --out's sweep.csv (--seeds: how many seeds it holds)")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    settings = parse_cmd_args(rest)
    if args.setting in settings or "seed" in settings:
        raise ValueError(f"set {args.setting} with --values and the seeds with --seeds")
    values = comma_list(args.values, yaml.safe_load)
    seeds = comma_list(args.seeds, int, "seeds")
    files = comma_list(args.config_files) or None
    out = Path(args.out)
    title = f"{args.model} on {args.dataset} against {args.setting}"
    if args.redraw == "True":  # the figure again, from sweep.csv, without the runs
        _, summary = read_summary(out / "sweep.csv")
        plot(summary, args.setting, title, out / "sweep.png", len(seeds))
        print(f"written: {out / 'sweep.png'}")
        return summary
    summary = sweep(args.model, args.setting, values, args.dataset, seeds, args.out, files, settings,
                    **policy(args))
    write_csv(summary, args.setting, out / "sweep.csv")
    plot(summary, args.setting, title, out / "sweep.png", len(seeds))
    print(f"written: {out / 'sweep.csv'}, {out / 'sweep.png'}")
    return summary
