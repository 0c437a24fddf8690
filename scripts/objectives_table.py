"""The objectives table: each model under each training objective, in one table (or under
any other setting with a compare folder per value: training samples, history length).

    python scripts/objectives_table.py paper=results/ml-1m-tuned full=results/ml-1m-objectives/full \\
        [neg50=... neg500=... pop50=...] --models=UMI,MIND+HN,ComiRec+HN,YoutubeDNN \\
        [--seeds=2020,2021,2022] [--metric=HitRate@50] [--against=paper] [--out=results/ml-1m-objectives/objectives]

Each ``NAME=FOLDER`` is an objective and a ``compare`` folder whose ``runs/`` hold its runs
(the paper's loss can be Table 2's folder: the same settings). For each objective and model
the table gives the test ``--metric`` (percent, mean ± std over the seeds found, their number
in brackets where it is not all of ``--seeds``). ``*`` marks a model whose difference from the
first model under the same objective is significant (p < 0.05) on the seeds both have: by
the two-level test over the test users and the training seeds (``--significance=two_level``,
the default; :func:`recbole_umi.stats.two_level_test`), or where a cell has one seed, whose
spread cannot be measured, by the paired t-test over the users, marked ``(1 seed)``. With
``--significance=ttest`` the test is over the users (each user's metric averaged over the
seeds) and ``‡`` marks a model whose seeds' means differ (Welch's t-test, p < 0.05; 2 seeds or
more). The last columns choose each
model's objective on validation (the highest mean best-validation ``--metric``), never on
test, and give its test figure there. ``--stand_in=MODEL@OBJECTIVE=OTHER@FOLDER`` takes another
model's runs for a model under an objective where the two are the same model and loss
(SASRecMatching under full softmax is RecBole's SASRec, trained with CE, but for the padding
item, which RecBole's CE keeps as a candidate: tests/test_model_contracts.py); such cells are
marked ``[OTHER]``, and the CSV's "stand-ins" column names them. ``--against=NAME`` adds a
second table: each model's difference from its own cell under objective NAME, with the same
two tests (the same model under two objectives, on the seeds both cells have), and the CSV
gains a "NAME2 - NAME" difference and its two p-values per other objective. Written to
``OUT.md`` and ``OUT.csv`` and printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi import stats  # noqa: E402
from recbole_umi.experiments import run_files  # noqa: E402
from recbole_umi.experiments.tables import mean_std, run_protocol, run_test_metrics, significance, table_test  # noqa: E402
from recbole_umi.config import comma_list  # noqa: E402
from recbole_umi.files import write_atomic, write_csv_atomic  # noqa: E402
from recbole_umi.metrics import metric_columns  # noqa: E402


def read_runs(folder: Path, models: list[str], seeds: list[int]) -> dict[str, list[dict]]:
    """``{model: [run records of the given seeds, in seed order]}``; a model without runs is left out."""
    runs = {}
    for model in models:
        records = run_files.read_runs(folder, model, seeds, existing=True)
        if records:
            runs[model] = records
    return runs


def metric_of(record: dict, metric: str, kind: str) -> float:
    """``record``'s ``metric`` (a paper name such as HitRate@50) in percent, of its test
    result (``kind`` "test": its mean over the test users where the run kept them, as the
    tables take it) or best validation result ("valid")."""
    result = run_test_metrics(record) if kind == "test" else record["best_valid_result"]
    return 100 * metric_columns(result, run_protocol(record))[metric]


def objectives_table(objectives: dict[str, Path], models: list[str], seeds: list[int], metric: str,
                     stand_ins: dict[tuple[str, str], tuple[str, Path]] | None = None, against: str | None = None,
                     test_name: str = "two_level"):
    """``(markdown, csv rows)`` of the table (see the module's docstring). ``stand_ins``:
    ``{(model, objective): (other model, folder)}``, the runs that stand for a model under an
    objective (``--stand_in``); ``against``: the objective each model's other cells are
    tested against (``--against``)."""
    stand_ins = stand_ins or {}
    by_objective: dict[str, dict[str, list[dict]]] = {}  # the runs read, stand-ins included
    cells: dict[str, dict[str, str]] = {model: {} for model in models}
    valid: dict[str, dict[str, float]] = {model: {} for model in models}
    test: dict[str, dict[str, float]] = {model: {} for model in models}
    rows = [["model", *(f"{name} {stat}" for name in objectives for stat in ("mean", "std", "seeds", "p", "p seeds")),
             "chosen objective", "chosen test mean", "stand-ins"]]
    used: dict[str, list[str]] = {model: [] for model in models}  # the objectives where a stand-in's runs were read
    first = models[0]
    values: dict[str, list] = {model: [] for model in models}
    for name, folder in objectives.items():
        runs = read_runs(folder, models, seeds)
        for (model, objective), (other, other_folder) in stand_ins.items():
            if objective == name and model in models:
                found = read_runs(other_folder, [other], seeds).get(other)
                runs.pop(model, None)
                if found:
                    runs[model] = found
                    used[model].append(name)
        by_objective[name] = runs
        for model in models:
            if model not in runs:
                cells[model][name] = "-"
                values[model] += ["", "", 0, "", ""]
                continue
            mean, std = mean_std([metric_of(r, metric, "test") for r in runs[model]])
            test[model][name] = mean
            valid[model][name] = mean_std([metric_of(r, metric, "valid") for r in runs[model]])[0]
            tested = None if model == first else _paired({first: runs.get(first), model: runs[model]}, metric,
                                                         test_name)[0]
            p, p_seeds = (None, None) if tested is None else (tested["p"], tested.get("p_seeds"))
            star = _marks(tested)
            count = "" if len(runs[model]) == len(seeds) else f" ({len(runs[model])})"
            stand_in = f" [{stand_ins[model, name][0]}]" if (model, name) in stand_ins else ""
            cells[model][name] = f"{mean:.2f} ± {std:.2f}{count}{star}{stand_in}"
            values[model] += [f"{mean:.4f}", f"{std:.4f}", len(runs[model]), "" if p is None else f"{p:.4g}",
                              "" if p_seeds is None else f"{p_seeds:.4g}"]
    lines = [
        f"Test {metric} in percent, mean ± std over the seeds ({len(seeds)} unless bracketed); * {_test_words(test_name)} "
        f"against {first} in the same column gives p < 0.05. The chosen column is the one with the highest mean "
        f"best-validation {metric}.",
        "",
        "| model | " + " | ".join(objectives) + " | chosen on validation | its test |",
        "| --- |" + " --- |" * (len(objectives) + 2),
    ]
    for model in models:
        chosen = max(valid[model], key=valid[model].get) if valid[model] else None
        chosen_test = "-" if chosen is None else f"{test[model][chosen]:.2f}"
        lines.append(f"| {model} | " + " | ".join(cells[model][name] for name in objectives)
                     + f" | {chosen or '-'} | {chosen_test} |")
        rows.append([model, *values[model], chosen or "", "" if chosen is None else f"{test[model][chosen]:.4f}",
                     " ".join(f"{name}={stand_ins[model, name][0]}" for name in used[model])])
    for (model, objective), (other, other_folder) in stand_ins.items():
        if objective in used.get(model, []):
            lines += ["", f"[{other}]: {model} under {objective} is {other}'s runs in {other_folder}."]
    if against is not None:
        lines += ["", *_against_table(by_objective, against, models, metric, rows, test_name)]
    return "\n".join(lines) + "\n", rows


def _test_words(test_name: str) -> str:
    if test_name == "two_level":
        return ("the two-level test over the test users and the training seeds (the paired t-test over the users "
                "where a side has one seed, marked (1 seed): the seeds' spread is not counted there)")
    return ("the paired t-test over the test users (each averaged over the seeds) gives p < 0.05, ‡ Welch's t-test "
            "of the seeds' means does (which counts the spread between training seeds, not between test users); *")


def _against_table(by_objective: dict[str, dict[str, list[dict]]], against: str, models: list[str], metric: str,
                   rows: list[list], test_name: str = "two_level") -> list[str]:
    """The lines of the ``--against`` table; each model's CSV row (``rows``, the header
    first) gains its difference and p-values for each other objective."""
    others = [name for name in by_objective if name != against]
    lines = [
        f"Test {metric} in each column minus in {against}, the same model, in points (seeds both cells "
        f"have); * {_test_words(test_name)} gives p < 0.05.",
        "",
        "| model | " + " | ".join(f"{name} - {against}" for name in others) + " |",
        "| --- |" + " --- |" * len(others),
    ]
    rows[0] += [f"{name} - {against} {stat}" for name in others for stat in ("delta", "p", "p seeds")]
    for model, row in zip(models, rows[1:]):
        cells = []
        for name in others:
            test, seeds = _paired({name: by_objective[name].get(model), against: by_objective[against].get(model)},
                                  metric, test_name)
            if test is None:
                cells.append("-")
                row += ["", "", ""]
                continue
            count = f", {seeds} seeds" if seeds > 1 else ""
            cells.append(f"{test['delta']:+.2f}{_marks(test)} (p = {test['p']:.2g}{count})")
            row += [f"{test['delta']:.4f}", f"{test['p']:.4g}",
                    "" if test.get("p_seeds") is None else f"{test['p_seeds']:.4g}"]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def _paired(pair: dict[str, list[dict] | None], metric: str, test_name: str = "two_level") -> tuple[dict | None, int]:
    """The first of ``pair``'s two run lists (``{name: runs}``) tested against the second on the
    seeds both have, as :func:`significance` gives it (``delta``: first minus second; ``p``;
    with the paired t-test also ``p_seeds``, Welch's over the seeds), and the number of those
    seeds. The two-level test falls back to the paired t-test where they share one seed
    (``one_seed`` is then True). None where either has no runs, they share no seed, or a run
    has no per-user results."""
    (_, first_runs), (other, other_runs) = pair.items()
    common = {r["seed"] for r in first_runs or []} & {r["seed"] for r in other_runs or []}
    if not common:
        return None, 0
    restricted = {name: [r for r in runs if r["seed"] in common] for name, runs in pair.items()}
    used = table_test(restricted, test_name)
    tests = significance(restricted, [metric], used)
    if tests is None:
        return None, len(common)
    return {**tests[other][metric], "one_seed": used != test_name}, len(common)


def _marks(test: dict | None) -> str:
    """``*`` where the test gives p < 0.05 (`` (1 seed)`` where the two-level test fell back to
    the test over users), ``‡`` where Welch's test over the seeds does (``--significance=ttest``)."""
    if test is None:
        return ""
    marks = "*" if test["p"] < stats.LEVEL else ""
    marks += "‡" if test.get("p_seeds") is not None and test["p_seeds"] < stats.LEVEL else ""
    return marks + (" (1 seed)" if test.get("one_seed") else "")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("objectives", nargs="+", metavar="NAME=FOLDER", help="an objective and its compare folder")
    parser.add_argument("--models", required=True, help="comma-separated; the first is tested against the others")
    parser.add_argument("--seeds", default="2020,2021,2022")
    parser.add_argument("--metric", default="HitRate@50")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.csv")
    parser.add_argument("--stand_in", action="append", default=[], metavar="MODEL@OBJECTIVE=OTHER@FOLDER",
                        help="under OBJECTIVE, MODEL's runs are OTHER's in FOLDER (the same model and loss under "
                             "another name); marked in the table")
    parser.add_argument("--significance", default="two_level", choices=("two_level", "ttest"),
                        help="two_level (test users and training seeds; the default) or ttest (over the users, "
                             "with Welch's test over the seeds beside it)")
    parser.add_argument("--against", default=None, metavar="NAME",
                        help="also test each model's other cells against its cell under objective NAME")
    args = parser.parse_args(argv)
    stand_ins = {}
    for given in args.stand_in:
        target, _, source = given.partition("=")
        (model, _, objective), (other, _, folder) = target.partition("@"), source.partition("@")
        if not all((model, objective, other, folder)) or not Path(folder, "runs").is_dir():
            parser.error(f"--stand_in {given!r}: give MODEL@OBJECTIVE=OTHER@FOLDER with runs/ in FOLDER")
        stand_ins[model, objective] = (other, Path(folder))
    objectives = {}
    for pair in args.objectives:
        name, separator, folder = pair.partition("=")
        if not separator or not name or not Path(folder, "runs").is_dir():
            parser.error(f"{pair!r}: give NAME=FOLDER with runs/ in FOLDER")
        objectives[name] = Path(folder)
    for model, objective in stand_ins:
        if model not in comma_list(args.models) or objective not in objectives:
            parser.error(f"--stand_in for {model} under {objective}: not a model and objective of this table")
    if args.against is not None and (args.against not in objectives or len(objectives) < 2):
        parser.error(f"--against={args.against}: give one of the table's objectives ({', '.join(objectives)}) "
                     "and at least one other")
    markdown, rows = objectives_table(objectives, comma_list(args.models), comma_list(args.seeds, int), args.metric,
                                      stand_ins, args.against, args.significance)
    print(markdown)
    if args.out:
        write_atomic(f"{args.out}.md", markdown)
        write_csv_atomic(f"{args.out}.csv", rows)
    return markdown


if __name__ == "__main__":
    main()
