"""Side-by-side runs: several models (plugin, RecBole, variants) on the same split and seeds.

    python -m recbole_umi.compare --models=UMI,MIND,MIND+HN,SASRec --dataset=ml-1m \\
        --seeds=1,2,3 --out=results/ml-1m [--key=value ...]

Every (model, seed) run trains and evaluates once through :func:`recbole_umi.run`; its full
result (with the epochs it trained and its best validation epoch) is written to
``<out>/runs/<model>__seed<seed>.json`` as soon as it ends, so an interrupted comparison
resumes where it stopped. All runs share the user split (it depends on ``user_split_seed``
only, never on ``seed``). The table, in the paper's layout (HitRate and Precision @N in
percent, mean ± std over seeds, best in bold, second best in italics, and the relative
improvement of the first model over the best other one), is printed and written to
``<out>/table.md`` and ``<out>/table.csv``.

Each run also keeps every test user's metrics, so the first model is tested against each
other one without retraining, by default with the two-level test
(:func:`recbole_umi.stats.two_level_test`: the test users and the training seeds both count
as samples, so the interval is as wide as a rerun with other seeds and users could move the
difference; it needs 2 seeds or more of each model); ``--significance=ttest`` or
``wilcoxon`` test over the users only (each user's metric averaged over the seeds), which
does not count the spread between training seeds. The difference and its 95% interval, with
Holm's correction over the comparisons of each metric, are appended to the table and written
to ``<out>/table_tests.csv``; the ▲% row marks the columns where the first model's difference
from the best other one (a gain or a loss: its sign) is significant (p < 0.05), as the paper
does. For the multi-interest
models the table ends with their interest diagnostics (how alike a user's interests are
and how the routing spreads the history over them), mean ± std over the seeds.

Every run file records the code that ran it (:func:`recbole_umi.provenance.code_version`:
package version, git commit and whether the package's files were changed, a digest of the
code, and the versions of Python, torch, RecBole, numpy and faiss). A comparison refuses to
add runs of other code to an output folder, or to tabulate runs of several code versions,
unless ``--allow_mixed_code=True``; the table names the code it was made with, or lists the
versions and their runs.

A run cut short (a session that ends, Ctrl-C) is not lost either: each run writes its
checkpoints to a folder of its own, ``<checkpoint_dir>/compare-<out>-<hash>/<model>__seed<seed>/``
(``checkpoint_dir`` defaults to ``saved``), and the next ``compare`` with the same ``--out``
continues it from the end of its last finished epoch (:func:`recbole_umi.run`'s ``resume``),
with the optimizer, early-stopping and random states, so that it ends as the uninterrupted
run would have. A checkpoint there made with other settings is left alone and the run
starts afresh.

Each run file keeps the dataset and the settings given to the comparison (its YAML files and
``--key=value`` arguments); resuming with another dataset or other settings (another batch
size, say) fails before anything trains, instead of mixing runs; changes to the plugin's
own defaults or code are caught by the code record (below). Several tables can share one ``--out`` and
so its finished runs: ``--table=ablation`` writes ``ablation.md`` and ``ablation.csv``.
``--variant_files=plan.yaml`` gives variants settings of their own (``UMI:
[results/tuning/ml-1m/UMI/best.yaml]``), stored and checked with each run like the rest.

Model names take variant suffixes: ``+HN`` / ``-HN`` set ``harder_negatives``, ``-DAR``
and ``-IR`` switch off UMI's dual-attention routing and interest refinement
(``UMI-IR`` is "UMI w/o IR"), ``-PROFILE`` UMISA's profile (no steering, no refinement).
A suffix is allowed only where it changes the model (the model class's
``variant_settings``): ``-DAR`` / ``-IR`` for UMI, ``-IR`` / ``-PROFILE`` for UMISA, ``+HN`` / ``-HN`` for the
plugin's multi-interest models (with one interest, harder negatives change nothing, so
``YoutubeDNN+HN`` would be YoutubeDNN). Every name, and every variant's settings, are
checked before the first run trains.

Under ``eval_protocol: user_split`` the table has the paper's names (HitRate@N); under
RecBole's protocol, RecBole's (recall@N), which are not the paper's metrics there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recbole_umi.config import comma_list, parse_cmd_args
from recbole_umi.experiments.runs import add_policy_arguments, compare, policy
from recbole_umi.experiments.tables import (
    render_code,
    render_diagnostics,
    render_history_breakdown,
    render_markdown,
    render_significance,
    significance,
    summarise,
    table_test,
    write_csv,
    write_tests_csv,
)
from recbole_umi.experiments.variants import read_variant_files
from recbole_umi.files import write_atomic
from recbole_umi import stats

__all__ = ["main"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_umi.compare",
        allow_abbrev=False,  # passed-through --key=value settings must never be read as an abbreviated option
        description=__doc__.split("\n\n")[0] + " Further --key=value arguments set config keys.",
    )
    parser.add_argument("--models", required=True, help="comma-separated, first is the one compared, e.g. UMI,MIND,MIND+HN")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--seeds", default="2020,2021,2022", help="comma-separated training seeds")
    parser.add_argument("--out", required=True, help="folder for runs/, table.md and table.csv")
    parser.add_argument("--config_files", default=None, help="comma-separated YAML files")
    parser.add_argument("--variant_files", default=None,
                        help="a YAML file mapping variant names to lists of YAML files for that variant only "
                             "(e.g. each model's tuned best.yaml), above --config_files")
    parser.add_argument("--table", default="table", help="name of the table files in --out (default: table.md, table.csv)")
    parser.add_argument("--significance", default="two_level", choices=tuple(stats.TESTS),
                        help="test of the first model against each other one: two_level (over test users and "
                             "training seeds, the default), ttest or wilcoxon (over test users only)")
    add_policy_arguments(parser)
    parser.add_argument("--history_buckets", type=int, default=0,
                        help="also break the test HitRate@50 down by the users' history length in this many "
                             "quantile buckets (0: not)")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    settings = parse_cmd_args(rest)  # fails now, not after hours of runs, on a malformed argument
    if "seed" in settings:
        raise ValueError("set the training seeds with --seeds, not --seed")
    variants = comma_list(args.models)
    seeds = comma_list(args.seeds, int, "seeds")
    files = comma_list(args.config_files) or None
    variant_files = read_variant_files(args.variant_files, variants) if args.variant_files else None
    flags = policy(args)
    results = compare(variants, args.dataset, seeds, args.out, files, config_dict=settings, variant_files=variant_files,
                      **flags)
    columns, table = summarise(results)
    test = table_test(results, args.significance)
    tests = significance(results, columns, test) if len(variants) > 1 else None
    markdown = render_markdown(columns, table, len(seeds), tests)
    out = Path(args.out)
    if tests:
        n_users = len(results[variants[0]][0]["test_per_user"]["user"])
        markdown += "\n" + render_significance(tests, columns, variants[0], n_users, test, len(seeds))
        write_tests_csv(out / f"{args.table}_tests.csv", columns, tests)
    elif len(variants) > 1:
        markdown += "\nNo paired test: some runs were made before per-user results were kept.\n"
    diagnostics = render_diagnostics(results)
    if diagnostics:
        markdown += "\n" + diagnostics
    if args.history_buckets > 0:
        column = next(c for c in columns if c.endswith("@50")) if any(c.endswith("@50") for c in columns) else columns[0]
        breakdown = render_history_breakdown(results, column, args.history_buckets)
        markdown += "\n" + (breakdown or "No breakdown by history length: some runs predate the history lengths.\n")
    markdown += "\n" + render_code(results, flags["allow_mixed_code"])
    write_atomic(out / f"{args.table}.md", markdown)
    write_csv(out / f"{args.table}.csv", columns, table)
    print(markdown)
    return markdown
