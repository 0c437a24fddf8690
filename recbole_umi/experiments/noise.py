"""Noise immunity (the paper's Table 5): models with clean and with noisy user profiles.

    python -m recbole_umi.noise --models=UMI,MIND --dataset=synth --data_path=DIR \\
        --profile_noise=0.1 --seeds=2020,2021,2022 --out=results/synth-noise [--config_files=...]
        [--variant_files=...] [--key=value ...]

Each model is trained and tested with every seed twice through :func:`recbole_umi.experiments.runs.compare`:
with the profiles as they are (``OUT/clean``) and with a share ``profile_noise`` of each
profile field's values replaced by other valid values, in training and evaluation alike
(``OUT/noisy``, :mod:`recbole_umi.data.profile_noise`). Finished runs are kept and skipped,
so an interrupted command resumes. ``--clean_from=DIR`` takes the clean runs from an earlier
``compare`` folder instead of ``OUT/clean`` (e.g. Table 2's, made with the same settings and
seeds): ``compare`` checks that its runs have this command's settings, and trains any that are
missing there. ``OUT/table5.md`` (and ``.csv``) holds, per model, the
clean and noisy test metrics (mean ± std over the seeds, percent) and the relative drop,
as the paper lays it out; then the two-level test (:func:`recbole_umi.stats.two_level_test`,
over the test users and the training seeds) of each model's clean against its noisy runs (a
seed's clean and noisy run paired: they start from the same weights), and of the first
model's per-user drop against each other model's (does it lose less?). With one seed, the
paired t-test over the users, which does not count the seeds' spread.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from recbole_umi import stats  # noqa: E402
from recbole_umi.experiments.runs import add_policy_arguments, compare, policy  # noqa: E402
from recbole_umi.experiments.tables import per_seed_users, render_code, summarise  # noqa: E402
from recbole_umi.experiments.variants import read_variant_files  # noqa: E402
from recbole_umi.config import comma_list, parse_cmd_args  # noqa: E402
from recbole_umi.files import write_atomic, write_csv_atomic  # noqa: E402
from recbole_umi.metrics import recbole_metric_name  # noqa: E402
from recbole_umi.settings import check  # noqa: E402

__all__ = ["noise_table", "main"]


def noise_table(clean: dict, noisy: dict, share: float) -> tuple[str, list[list[str]]]:
    """Markdown and CSV rows of Table 5 from the two ``compare`` results."""
    columns, clean_table = summarise(clean)
    _, noisy_table = summarise(noisy)
    variants = list(clean)
    n_seeds = len(clean[variants[0]])
    header = "| model | " + " | ".join(columns) + " |"
    lines = [
        f"Test metrics in percent, mean ± std over {n_seeds} seed(s), with clean profiles and with {share:.0%} of "
        "each profile field's values replaced by other values (training and evaluation alike); ▼ the relative drop.",
        "",
        header,
        "| --- |" + " --- |" * len(columns),
    ]
    rows = [["model", "profiles", *columns]]
    for variant in variants:
        clean_row = [clean_table[variant][c] for c in columns]
        noisy_row = [noisy_table[variant][c] for c in columns]
        drops = [100 * (a[0] - b[0]) / a[0] if a[0] else float("nan") for a, b in zip(clean_row, noisy_row)]
        lines.append(f"| {variant} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in clean_row) + " |")
        lines.append(f"| {variant} (noise) | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in noisy_row) + " |")
        lines.append(f"| ▼ {variant} | " + " | ".join(f"{d:.2f}%" for d in drops) + " |")
        rows += [[variant, "clean", *(f"{m:.4f}" for m, _ in clean_row)],
                 [variant, "noisy", *(f"{m:.4f}" for m, _ in noisy_row)],
                 [variant, "relative drop %", *(f"{d:.4f}" for d in drops)]]
    two_level = n_seeds >= 2
    how = ("Two-level tests over the test users and the training seeds (recbole_umi.stats.two_level_test; "
           "clean - noisy with a seed's two runs paired, as they start from the same weights)" if two_level else
           "Paired t-tests over the test users (one seed: the spread between training seeds cannot be measured "
           "and is not counted)")
    lines += ["", f"{how}: difference in points [95% interval] (p):", ""]
    lines += ["| comparison | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    drops = {}  # variant -> column -> seeds x users clean - noisy
    for variant in variants:
        cells, drops[variant] = [], {}
        for column in columns:
            metric = recbole_metric_name(column)
            a, b = per_seed_users(clean[variant], metric), per_seed_users(noisy[variant], metric)
            if a is None or b is None or a[0] != b[0]:
                cells.append("n/a")
                continue
            clean_seeds = [r["seed"] for r in clean[variant]]
            if clean_seeds != [r["seed"] for r in noisy[variant]]:
                raise ValueError(f"{variant}: the clean and the noisy runs have other seeds")
            drops[variant][column] = 100 * (a[1] - b[1])
            cells.append(_cell(100 * a[1], 100 * b[1], two_level, paired_seeds=True))
        lines.append(f"| {variant}: clean - noisy | " + " | ".join(cells) + " |")
    first = variants[0]
    for other in variants[1:]:
        cells = []
        for column in columns:
            if column in drops[first] and column in drops[other]:
                cells.append(_cell(drops[first][column], drops[other][column], two_level))
            else:
                cells.append("n/a")
        lines.append(f"| drop of {first} - drop of {other} | " + " | ".join(cells) + " |")
    lines += ["", "Differences in points; a negative drop difference: the first model loses less."]
    return "\n".join(lines) + "\n", rows


def _cell(first, other, two_level: bool, paired_seeds: bool = False) -> str:
    """``"+0.123 [-0.2, +0.4] (p=0.5)"`` for two ``seeds x users`` arrays in points."""
    if two_level:
        test = stats.two_level_test(first, other, paired_seeds=paired_seeds)
    else:
        test = stats.paired_test(first.mean(axis=0), other.mean(axis=0))
    return f"{test['delta']:+.3f} [{test['low']:+.2f}, {test['high']:+.2f}] (p={test['p']:.3g})"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m recbole_umi.noise", allow_abbrev=False,  # no abbreviated options: --key=value settings pass through
                                     description=__doc__.split("\n\n")[0] + " Further --key=value arguments set config keys.")
    parser.add_argument("--models", required=True, help="comma-separated, e.g. UMI,MIND")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--profile_noise", type=float, default=0.1, help="share of each field's values replaced")
    parser.add_argument("--seeds", default="2020,2021,2022")
    parser.add_argument("--out", required=True)
    parser.add_argument("--config_files", default=None)
    parser.add_argument("--variant_files", default=None, help="as in compare")
    parser.add_argument("--clean_from", default=None,
                        help="a compare folder whose runs (same models, seeds and settings) are the clean ones")
    add_policy_arguments(parser)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    share = check("profile_noise", args.profile_noise)
    if share == 0:
        raise ValueError("--profile_noise must be above 0 to compare against the clean profiles")
    settings = parse_cmd_args(rest)
    if "profile_noise" in settings or "seed" in settings:
        raise ValueError("set the noise with --profile_noise and the seeds with --seeds")
    variants = comma_list(args.models)
    seeds = comma_list(args.seeds, int, "seeds")
    files = comma_list(args.config_files) or None
    variant_files = read_variant_files(args.variant_files, variants) if args.variant_files else None
    out = Path(args.out)
    # the clean runs leave profile_noise at its default (off), so their settings are those of
    # a plain comparison and --clean_from can name one
    clean_out = Path(args.clean_from) if args.clean_from else out / "clean"
    flags = policy(args)
    results = {
        "clean": compare(variants, args.dataset, seeds, clean_out, files, settings, variant_files=variant_files,
                         **flags),
        "noisy": compare(variants, args.dataset, seeds, out / "noisy", files, {**settings, "profile_noise": share},
                         variant_files=variant_files, **flags),
    }
    markdown, rows = noise_table(results["clean"], results["noisy"], share)
    both = {f"{variant} ({kind})": runs for kind, result in results.items() for variant, runs in result.items()}
    markdown += "\n" + render_code(both, flags["allow_mixed_code"])
    write_atomic(out / "table5.md", markdown)
    write_csv_atomic(out / "table5.csv", rows)
    print(markdown)
    return markdown
