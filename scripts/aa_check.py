"""A/A check of the significance tests on our own runs: how often does a test call two sets
of runs of the same model different?

    python scripts/aa_check.py [--out=results/significance-aa]

1. **Seed splits**: every model of Table 2 (results/ml-1m-tuned, 5 training seeds of the same
   settings) has its seeds split into 2 against 3 in all 10 ways; each split is tested on every
   metric, by the two-level test (recbole_umi.stats.two_level_test) and by the paired t-test
   over the users that compare used before (each user averaged over the seeds). Both halves are
   the same model: a test at level 0.05 should call about 5% of them different.
2. **Reruns**: pairs of runs of the same model, settings and seeds made at different times:
   MIND+HN of the routing sweep at lambda 0 against Table 2's MIND+HN (seeds 2020-2022), and,
   where they exist, the reruns in results/ml-1m-rerun (Table 2's UMI and MIND+HN on newer
   code, seeds 2021-2023) against Table 2's runs of those seeds.
3. **Known large differences**, which a useful test must call different: UMI against
   ProfileDSSM on ml-1m (5 seeds) and UMI against UMI without harder negatives on the synthetic
   benchmark (3 seeds).

Writes ``OUT/aa.md`` and prints it.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recbole_umi.experiments.run_files import read_runs, run_file, same_users  # noqa: E402
from recbole_umi.files import write_atomic  # noqa: E402
from recbole_umi.stats import paired_test, two_level_test  # noqa: E402

METRICS = ("recall@10", "recall@50", "recall@300", "precision@10", "precision@50", "precision@300")
NAMES = {"recall": "HitRate", "precision": "Precision"}


class Runs(NamedTuple):
    """One variant's runs in one folder: what to call them, their records (one a seed, in seed
    order, tested on the same users) and ``{metric: seeds x users}`` in percent."""

    name: str
    records: list[dict]
    values: dict


def per_seed(folder: Path, variant: str, seeds) -> Runs | None:
    """The :class:`Runs` of ``variant`` in ``folder``, one a seed of ``seeds``; None if one is missing."""
    if not all(run_file(folder, variant, seed).exists() for seed in seeds):
        return None
    runs = read_runs(folder, variant, seeds)
    name = f"{variant} in {folder}"
    same_users(runs, names=[name])
    return Runs(name, runs, {m: 100 * np.array([r["test_per_user"][m] for r in runs])
                             for m in runs[0]["test_per_user"] if m not in ("user", "history_length")})


def both_tests(first: np.ndarray, other: np.ndarray) -> tuple[dict, dict]:
    return two_level_test(first, other), paired_test(first.mean(axis=0), other.mean(axis=0))


def label(metric: str) -> str:
    family, k = metric.split("@")
    return f"{NAMES[family]}@{k}"


def seed_splits(folder: Path, seeds: list[int]) -> tuple[list[str], dict]:
    models = sorted({p.name.split("__seed")[0] for p in (folder / "runs").glob("*.json")})
    lines, counts = [], {"two_level": 0, "users": 0, "tests": 0}
    for model in models:
        found = per_seed(folder, model, seeds)
        if found is None:
            continue
        values = found.values
        model_two = model_users = tests = 0
        for group in itertools.combinations(range(len(seeds)), 2):
            rest = [i for i in range(len(seeds)) if i not in group]
            for metric in METRICS:
                two, users = both_tests(values[metric][list(group)], values[metric][rest])
                model_two += two["p"] < 0.05
                model_users += users["p"] < 0.05
                tests += 1
        counts["two_level"] += model_two
        counts["users"] += model_users
        counts["tests"] += tests
        lines.append(f"| {model} | {tests} | {model_two} ({100 * model_two / tests:.0f}%) | "
                     f"{model_users} ({100 * model_users / tests:.0f}%) |")
    return lines, counts


def pair_line(name: str, first: Runs, other: Runs, metric: str = "recall@50") -> str:
    """The table's line of ``first`` minus ``other``, which must have been tested on the same users."""
    same_users(first.records, other.records, names=[first.name, other.name])
    two, users = both_tests(first.values[metric], other.values[metric])
    return (f"| {name} | {label(metric)} | {two['delta']:+.2f} | [{two['low']:+.2f}, {two['high']:+.2f}] p = {two['p']:.3g} "
            f"| [{users['low']:+.2f}, {users['high']:+.2f}] p = {users['p']:.3g} |")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "significance-aa"))
    args = parser.parse_args(argv)
    results = ROOT / "results"
    tuned, seeds = results / "ml-1m-tuned", [2020, 2021, 2022, 2023, 2024]
    split_lines, counts = seed_splits(tuned, seeds)
    lines = [
        "# A/A check of the significance tests",
        "",
        "Made by `python scripts/aa_check.py` from the committed run files.",
        "",
        "## Seed splits: one model's 5 seeds, 2 against 3",
        "",
        "Each model of Table 2 (results/ml-1m-tuned) has 5 training seeds of the same settings; split 2 against 3 "
        "in all 10 ways, each split tested on the 6 metrics. Both sides are the same model, so every call of a "
        "difference (p < 0.05) is a false one; a test at level 0.05 should make about 5% of them (the tests of "
        "one model are correlated, so the counts vary more than independent ones would).",
        "",
        "| model | tests | two-level test: p < 0.05 | paired t-test over users: p < 0.05 |",
        "| --- | --- | --- | --- |",
        *split_lines,
        f"| all | {counts['tests']} | {counts['two_level']} ({100 * counts['two_level'] / counts['tests']:.1f}%) | "
        f"{counts['users']} ({100 * counts['users'] / counts['tests']:.1f}%) |",
        "",
        "## Reruns and known differences",
        "",
        "The first model minus the second, in points: the two-level test's difference, 95% interval and p, and "
        "the paired t-test over users (each user averaged over the seeds) for the same pair.",
        "",
        "| pair | metric | difference | two-level test | paired t-test over users |",
        "| --- | --- | --- | --- | --- |",
    ]
    routing = per_seed(results / "ml-1m-routing" / "MIND+HN" / "routing_regularization=0", "MIND+HN", seeds[:3])
    table2 = per_seed(tuned, "MIND+HN", seeds[:3])
    for metric in ("recall@10", "recall@50", "recall@300"):
        lines.append(pair_line("rerun: MIND+HN of the routing sweep (lambda 0) - Table 2's MIND+HN, seeds 2020-2022",
                               routing, table2, metric))
    for model in ("UMI", "MIND+HN"):
        rerun = per_seed(results / "ml-1m-rerun", model, [2021, 2022, 2023])
        if rerun is not None:
            stored = per_seed(tuned, model, [2021, 2022, 2023])
            for metric in ("recall@10", "recall@50", "recall@300"):
                lines.append(pair_line(f"rerun on today's code: {model} - Table 2's {model}, seeds 2021-2023",
                                       rerun, stored, metric))
    lines.append(pair_line("known: UMI - ProfileDSSM on ml-1m, 5 seeds", per_seed(tuned, "UMI", seeds),
                           per_seed(tuned, "ProfileDSSM", seeds)))
    synth = results / "synth-table3"
    lines.append(pair_line("known: UMI - UMI w/o HN on the synthetic benchmark, 3 seeds",
                           per_seed(synth, "UMI", seeds[:3]), per_seed(synth, "UMI-HN", seeds[:3])))
    markdown = "\n".join(lines) + "\n"
    out = Path(args.out)
    write_atomic(out / "aa.md", markdown)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
