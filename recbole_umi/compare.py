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
other one without retraining: a paired test over the test users (each user's metric
averaged over the seeds; ``--significance=ttest`` or ``wilcoxon``), with the mean
difference and its 95% confidence interval, appended to the table and written to
``<out>/table_tests.csv``; the ▲% row marks the columns where the first model's gain over
the best other one is significant (p < 0.05), as the paper does. For the multi-interest
models the table ends with their interest diagnostics (how alike a user's interests are
and how the routing spreads the history over them), mean ± std over the seeds.

A run cut short (a session that ends, Ctrl-C) is not lost either: each run writes its
checkpoints to a folder of its own, ``<checkpoint_dir>/compare-<out>-<hash>/<model>__seed<seed>/``
(``checkpoint_dir`` defaults to ``saved``), and the next ``compare`` with the same ``--out``
continues it from the end of its last finished epoch (:func:`recbole_umi.run`'s ``resume``),
with the optimizer, early-stopping and random states, so that it ends as the uninterrupted
run would have. A checkpoint there made with other settings is left alone and the run
starts afresh.

Each run file keeps the dataset and the settings given to the comparison (its YAML files and
``--key=value`` arguments); resuming with another dataset or other settings (another batch
size, say) fails before anything trains, instead of mixing runs. (Changes to the plugin's
own defaults or code are not detected.) Several tables can share one ``--out`` and
so its finished runs: ``--table=ablation`` writes ``ablation.md`` and ``ablation.csv``.
``--variant_files=plan.yaml`` gives variants settings of their own (``UMI:
[results/tuning/ml-1m/UMI/best.yaml]``), stored and checked with each run like the rest.

Model names take variant suffixes: ``+HN`` / ``-HN`` set ``harder_negatives``, ``-DAR``
and ``-IR`` switch off UMI's dual-attention routing and interest refinement
(``UMI-IR`` is "UMI w/o IR"). A suffix is allowed only where it changes the model (the
model class's ``variant_settings``): ``-DAR`` / ``-IR`` for UMI, ``+HN`` / ``-HN`` for the
plugin's multi-interest models (with one interest, harder negatives change nothing, so
``YoutubeDNN+HN`` would be YoutubeDNN). Every name, and every variant's settings, are
checked before the first run trains.

Under ``eval_protocol: user_split`` the table has the paper's names (HitRate@N); under
RecBole's protocol, RecBole's (recall@N), which are not the paper's metrics there.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

from recbole_umi.checkpoint import CheckpointError, read_checkpoint, rebuild_settings
from recbole_umi.config import Config, comma_list, parse_cmd_args
from recbole_umi.metrics import metric_columns, recbole_metric_name
from recbole_umi.quick_start import run
from recbole_umi.registry import get_model
from recbole_umi.settings import SettingsError

__all__ = [
    "VARIANT_SUFFIXES",
    "SettingsMismatchError",
    "VariantError",
    "comparable",
    "parse_variant",
    "resolve_variant",
    "check_variants",
    "given_settings",
    "run_settings",
    "checkpoint_root",
    "run_checkpoint_dir",
    "interrupted_run",
    "check_finished_runs",
    "compare",
    "check_comparison",
    "summarise",
    "paired_test",
    "seed_test",
    "significance",
    "render_markdown",
    "render_significance",
    "main",
]

VARIANT_SUFFIXES = {
    "+HN": {"harder_negatives": True},
    "-HN": {"harder_negatives": False},
    "-DAR": {"use_dar": False},
    "-IR": {"use_ir": False},
}


def parse_variant(name: str) -> tuple[str, dict]:
    """``"UMI-DAR-HN"`` -> ``("UMI", {"use_dar": False, "harder_negatives": False})``."""
    model, overrides = name, {}
    while True:
        for suffix, settings in VARIANT_SUFFIXES.items():
            if model.endswith(suffix) and len(model) > len(suffix):
                model, overrides = model[: -len(suffix)], {**settings, **overrides}
                break
        else:
            return model, overrides


class VariantError(SettingsError):
    """A name in ``--models`` that names no model, or a suffix its model does not have."""


def resolve_variant(name: str) -> tuple[str, dict]:
    """:func:`parse_variant`, checked: the model exists (plugin or RecBole) and each suffix
    switches a setting the model has (its class's ``variant_settings``); else
    :class:`VariantError` naming the variant, the suffix and the suffixes the model takes."""
    model, overrides = parse_variant(name)
    try:
        model_class = get_model(model)
    except ValueError as error:
        raise VariantError("models", name, f"names no model: {error}") from None
    supported = set(getattr(model_class, "variant_settings", ()))
    allowed = [suffix for suffix, switched in VARIANT_SUFFIXES.items() if set(switched) <= supported]
    for key, value in overrides.items():
        if key not in supported:
            suffix = next(s for s, switched in VARIANT_SUFFIXES.items() if switched == {key: value})
            raise VariantError(
                "models", name,
                f"the suffix {suffix} sets {key}, which does not change {model} (a variant must differ from its "
                f"model); {model} takes {', '.join(allowed) if allowed else 'no suffix'}",
            )
    return model, overrides


def check_variants(variants, dataset, config_file_list=None, config_dict=None) -> None:
    """Before anything trains: every variant names a model with its suffixes, and its
    config (the comparison's settings, the variant's) passes validation."""
    for variant in variants:
        model, overrides = resolve_variant(variant)
        Config(model, dataset, config_file_list, {**(config_dict or {}), **overrides})


# Settings that say where things live or what is printed, not what a run computes: a
# comparison may resume with them changed.
_PLACE_SETTINGS = {"data_path", "checkpoint_dir", "show_progress", "state", "gpu_id", "use_gpu"}


class SettingsMismatchError(ValueError):
    """A finished run in the output folder was made with other settings than this comparison."""


def given_settings(config_file_list=None, config_dict=None) -> dict:
    """The YAML files' keys under the ``--key=value`` ones, as given (nothing resolved)."""
    settings = {}
    for name in config_file_list or []:
        settings.update(yaml.safe_load(Path(name).read_text()) or {})
    settings.update(config_dict or {})
    return settings


def run_settings(config_file_list=None, config_dict=None) -> dict:
    """What a comparison's runs are made with: :func:`given_settings` less the
    :data:`_PLACE_SETTINGS`; stored with each run and checked on resume."""
    settings = given_settings(config_file_list, config_dict)
    return {key: value for key, value in sorted(settings.items()) if key not in _PLACE_SETTINGS}


def comparable(settings: dict | None) -> dict | None:
    """Settings with command-line strings read as YAML, so ``"1024"`` equals ``1024``."""
    if settings is None:
        return None
    readable = {}
    for key, value in settings.items():
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        readable[key] = value
    return readable


def check_finished_runs(out: Path, jobs, dataset: str, settings_of: dict) -> None:
    """Fail, before anything trains, if a finished run of ``jobs`` in ``out`` was made on
    another dataset or with other settings than ``settings_of[variant]``."""
    for variant, seed in jobs:
        settings = settings_of[variant]
        path = run_file(out, variant, seed)
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        if record.get("dataset", dataset) != dataset:
            raise SettingsMismatchError(
                f"{path} was run on the dataset {record['dataset']!r}, this comparison is on {dataset!r}: "
                "use another --out"
            )
        if comparable(record.get("settings")) != comparable(settings):
            raise SettingsMismatchError(
                f"{path} was run with the settings {record.get('settings')}, this comparison has {settings}: "
                "use another --out, or delete that file to run it again"
            )


def run_file(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / f"{re.sub(r'[^A-Za-z0-9_.+-]', '_', variant)}__seed{seed}.json"


def checkpoint_root(out, kind: str, files: list[str], config_dict: dict | None) -> Path:
    """``<checkpoint_dir>/<kind>-<out's name>-<hash of its path>``: where the runs of the
    command (``kind``: compare, tune) writing to ``out`` keep their checkpoints, so that an
    interrupted run is found again and no two output folders share one."""
    base = given_settings(files, config_dict).get("checkpoint_dir") or "saved"
    resolved = Path(out).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return Path(str(base)) / f"{kind}-{resolved.name}-{digest}"


def epochs_text(record: dict) -> str:
    """``"25 epochs, best 18"`` for a run's or trial's record (``"no validation"`` without a best epoch)."""
    best = "no validation" if record["best_epoch"] is None else f"best {record['best_epoch']}"
    return f"{record['epochs']} epochs, {best}"


def run_checkpoint_dir(out: Path, variant: str, seed: int, files: list[str], config_dict: dict | None) -> Path:
    """Where the run of ``variant`` with ``seed`` in the comparison ``out`` keeps its checkpoints."""
    return checkpoint_root(out, "compare", files, config_dict) / run_file(out, variant, seed).stem


def interrupted_run(folder: Path, settings: dict, log=print) -> Path | None:
    """The newest ``-last`` checkpoint in ``folder`` if it was made with ``settings`` (a
    run to continue), else None."""
    candidates = sorted(folder.glob("*-last.pth"), key=lambda path: path.stat().st_mtime) if folder.is_dir() else []
    if not candidates:
        return None
    last = candidates[-1]
    try:
        saved = read_checkpoint(last)
    except CheckpointError as error:
        log(f"  {last} cannot be read ({error}); the run starts afresh")
        return None
    config = rebuild_settings(saved["config"])  # the settings in the form they are given
    wanted = comparable(settings)
    made = comparable({key: config[key] for key in wanted if key in config})
    differ = sorted(key for key, value in made.items() if value != wanted[key])
    if differ:
        log(f"  {last} was made with another {', '.join(differ)}; the run starts afresh")
        return None
    return last


def check_comparison(variants, dataset, seeds, out, config_file_list=None, config_dict=None,
                     variant_files: dict[str, list[str]] | None = None):
    """What :func:`compare` checks before its first run, without running anything: every
    variant and its settings (:func:`check_variants`), and that the runs already in ``out``
    were made with these settings (:class:`SettingsMismatchError` if not). Returns each
    variant's config files, the jobs ``(variant, seed)`` seed by seed, and each variant's
    settings as its run files record them."""
    variant_files = variant_files or {}
    files_of = {v: [*(config_file_list or []), *variant_files.get(v, [])] for v in variants}
    for variant in variants:  # now, not hours later when its first run would start
        check_variants([variant], dataset, files_of[variant], config_dict)
    jobs = [(variant, seed) for seed in seeds for variant in variants]
    # JSON round trip, so that the settings compare equal to those read back from disk
    settings_of = {v: json.loads(json.dumps(run_settings(files_of[v], config_dict))) for v in variants}
    check_finished_runs(Path(out), jobs, dataset, settings_of)
    return files_of, jobs, settings_of


def compare(variants, dataset, seeds, out, config_file_list=None, config_dict=None, log=print,
            variant_files: dict[str, list[str]] | None = None) -> dict:
    """Run every variant with every seed, seed by seed (every variant's first seed before
    any second one: a comparison cut short is complete for its first seeds), skipping runs
    already on disk; returns ``{variant: [run record per seed]}``. A variant's own settings
    and the seed override ``config_dict``, which overrides ``variant_files[variant]`` (that
    variant's YAML files, e.g. its tuned ``best.yaml``), which override ``config_file_list``."""
    files_of, jobs, settings_of = check_comparison(variants, dataset, seeds, out, config_file_list, config_dict,
                                                   variant_files)
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results: dict[str, list] = {variant: [] for variant in variants}
    began = time.perf_counter()
    done_here = 0
    for number, (variant, seed) in enumerate(jobs, 1):
        path = run_file(out, variant, seed)
        if path.exists():
            log(f"[{number}/{len(jobs)}] {variant} seed {seed}: already done ({path.name})")
        else:
            model, overrides = resolve_variant(variant)
            checkpoints = run_checkpoint_dir(out, variant, seed, files_of[variant], config_dict)
            resume = interrupted_run(checkpoints, {**settings_of[variant], "seed": seed}, log)
            if resume is None:
                log(f"[{number}/{len(jobs)}] {variant} seed {seed}: training ...")
            else:
                log(f"[{number}/{len(jobs)}] {variant} seed {seed}: continuing the interrupted run from {resume} ...")
            started = time.perf_counter()
            settings = {**(config_dict or {}), **overrides, "seed": seed, "checkpoint_dir": str(checkpoints)}
            result = run(model, dataset, files_of[variant], settings, saved=True,
                         resume=None if resume is None else str(resume))
            record = {
                "variant": variant,
                "model": model,
                "dataset": dataset,
                "seed": seed,
                "eval_protocol": result["eval_protocol"],
                "overrides": overrides,
                "settings": settings_of[variant],
                "wall_s": round(time.perf_counter() - started, 1),  # this process's part of it
                "resumed_from": None if resume is None else str(resume),
                "epochs": result["epochs"],
                "best_epoch": result["best_epoch"],
                "best_valid_result": {k: float(v) for k, v in result["best_valid_result"].items()},
                "test_result": {k: float(v) for k, v in result["test_result"].items()},
                # each test user's metrics, for the paired tests (rounded: JSON size)
                "interest_diagnostics": result["interest_diagnostics"],
                "test_per_user": {
                    k: v if k == "user" else [round(float(x), 6) for x in v] for k, v in result["test_per_user"].items()
                },
            }
            path.write_text(json.dumps(record, indent=2) + "\n")
            done_here += 1
            elapsed = time.perf_counter() - began
            remaining = sum(not run_file(out, v, s).exists() for v, s in jobs)
            log(
                f"[{number}/{len(jobs)}] {variant} seed {seed}: done in {record['wall_s']:.0f}s "
                f"({epochs_text(record)}); "
                f"about {elapsed / done_here * remaining / 60:.0f} min left"
            )
        results[variant].append(json.loads(path.read_text()))
    return results


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 for a single seed)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run_protocol(record: dict) -> str:
    """The evaluation protocol of a run record; records made before it was stored are all
    from the dataset configs' user_split (the paper's)."""
    return record.get("eval_protocol", "user_split")


def summarise(results: dict) -> tuple[list[str], dict]:
    """Columns (the paper's metric names under user_split, else RecBole's:
    :func:`recbole_umi.metrics.metric_columns`) and ``{variant: {column: (mean %, std %)}}``."""
    columns: list[str] = []
    table = {}
    for variant, runs in results.items():
        per_run = [metric_columns(r["test_result"], run_protocol(r)) for r in runs]
        for name in per_run[0]:
            if name not in columns:
                columns.append(name)
        table[variant] = {}
        for name in per_run[0]:
            values = [100 * r[name] for r in per_run]
            table[variant][name] = mean_std(values)
    columns.sort(key=lambda c: (int(c.split("@")[1]), c.split("@")[0] not in ("HitRate", "recall")))
    return columns, table


def _ranks(table: dict, column: str) -> tuple[str | None, str | None]:
    ordered = sorted(table, key=lambda v: table[v][column][0], reverse=True)
    return ordered[0], ordered[1] if len(ordered) > 1 else None


def best_other(table: dict, column: str) -> str | None:
    """The variant after the first with the best mean in ``column`` (None: only one)."""
    others = list(table)[1:]
    return max(others, key=lambda v: table[v][column][0]) if others else None


def improvement(table: dict, column: str) -> float | None:
    """Relative improvement (%) of the first variant over the best of the others."""
    other = best_other(table, column)
    if other is None:
        return None
    first, best = table[next(iter(table))][column][0], table[other][column][0]
    return 100 * (first - best) / best if best else None


SIGNIFICANCE_TESTS = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
SIGNIFICANCE_LEVEL = 0.05


def paired_test(first, other, test: str = "ttest") -> dict:
    """The paired comparison of two models over the same users.

    Args:
        first, other: per-user values of one metric, the same users in the same order.
        test: ``ttest`` (scipy's ``ttest_rel``) or ``wilcoxon`` (``wilcoxon``).

    Returns:
        ``{"delta", "low", "high", "p"}``: the mean of ``first - other``, its 95%
        t-interval, and the two-sided p-value of the test (1.0 where every difference is 0).
    """
    from scipy import stats

    first, other = np.asarray(first, dtype=float), np.asarray(other, dtype=float)
    if first.shape != other.shape or first.size < 2:
        raise ValueError(f"paired_test needs two equally long arrays of at least 2 users, got {first.shape} and {other.shape}")
    difference = first - other
    mean, sem = difference.mean(), stats.sem(difference)
    half = stats.t.ppf(0.975, difference.size - 1) * sem
    if not difference.any():
        p = 1.0
    elif test == "ttest":
        p = float(stats.ttest_rel(first, other).pvalue)
    elif test == "wilcoxon":
        p = float(stats.wilcoxon(first, other).pvalue)
    else:
        raise ValueError(f"test must be one of {tuple(SIGNIFICANCE_TESTS)}, got {test!r}")
    return {"delta": float(mean), "low": float(mean - half), "high": float(mean + half), "p": p}


def seed_averaged_users(runs: list[dict], metric: str) -> tuple[list[str], np.ndarray] | None:
    """Each test user's ``metric`` averaged over the runs (seeds); None where a run lacks
    per-user results (made before they were kept)."""
    if not all("test_per_user" in r for r in runs):
        return None
    users = runs[0]["test_per_user"]["user"]
    for r in runs[1:]:
        if r["test_per_user"]["user"] != users:
            raise ValueError(f"{r['variant']} seed {r['seed']} was tested on other users than seed {runs[0]['seed']}")
    return users, np.mean([r["test_per_user"][metric] for r in runs], axis=0)


def seed_test(first_runs: list[dict], other_runs: list[dict], metric: str, paired: bool = False) -> float | None:
    """A t-test over the seeds: each run's ``metric`` averaged over its test users, so that
    the spread between training seeds is counted. The paired test over users counts the
    spread between test users instead (each user averaged over the seeds) and not that of
    the training; neither counts both. Two models' seeds are independent trainings: Welch's
    t-test (scipy's ``ttest_ind``, unequal variances). ``paired``: the runs of one seed start
    from the same weights and batches (a model with clean and with noisy profiles), so the
    seeds are paired (``ttest_rel``; both sides must have the same seeds).
    The two-sided p-value; None with fewer than 2 runs on a side, or runs without per-user
    results, or no spread to test against."""
    from scipy import stats

    if min(len(first_runs), len(other_runs)) < 2 or not all("test_per_user" in r for r in first_runs + other_runs):
        return None
    if paired:
        seeds = {r["seed"]: r for r in other_runs}
        if sorted(seeds) != sorted(r["seed"] for r in first_runs):
            raise ValueError("a paired test over the seeds needs the same seeds on both sides")
        other_runs = [seeds[r["seed"]] for r in first_runs]
    means = [np.array([np.mean(r["test_per_user"][metric]) for r in runs]) for runs in (first_runs, other_runs)]
    spread = np.ptp(means[0] - means[1]) if paired else max(np.ptp(side) for side in means)
    if spread == 0:
        return None
    with warnings.catch_warnings():  # of a side without spread: Welch's test takes the other side's
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        p = stats.ttest_rel(*means).pvalue if paired else stats.ttest_ind(*means, equal_var=False).pvalue
    return float(p)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for testing them all at once (in the given
    order): the i-th smallest is multiplied by ``m - i + 1`` (i from 1), then made no
    smaller than the one before it, and capped at 1. An adjusted p below the level rejects
    with the family-wise error rate held at that level."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def significance(results: dict, columns: list[str], test: str = "ttest") -> dict | None:
    """``{other variant: {column: paired_test(first, other)}}`` in percentage points, the
    first variant against each other one over the test users, each user's metric averaged
    over seeds; each test also holds ``p_holm``, its p-value adjusted (:func:`holm`) for the
    comparisons with every other variant on the same metric, and ``p_seeds``, the p-value
    of :func:`seed_test` (None with fewer than 2 seeds). None if some run has no per-user
    results."""
    variants = list(results)
    first = {column: seed_averaged_users(results[variants[0]], recbole_metric_name(column)) for column in columns}
    tests = {}
    for other in variants[1:]:
        tests[other] = {}
        for column in columns:
            first_users = first[column]
            other_users = seed_averaged_users(results[other], recbole_metric_name(column))
            if first_users is None or other_users is None:
                return None
            if first_users[0] != other_users[0]:
                raise ValueError(f"{variants[0]} and {other} were tested on other users: not the same split")
            tests[other][column] = paired_test(100 * first_users[1], 100 * other_users[1], test)
            tests[other][column]["p_seeds"] = seed_test(results[variants[0]], results[other],
                                                        recbole_metric_name(column))
    for column in columns:
        adjusted = holm([tests[other][column]["p"] for other in tests])
        for other, p_holm in zip(tests, adjusted):
            tests[other][column]["p_holm"] = p_holm
    return tests


def render_significance(tests: dict, columns: list[str], first: str, n_users: int, test: str) -> str:
    lines = [
        f"{SIGNIFICANCE_TESTS[test].capitalize()} of {first} against each model over the {n_users} test users "
        "(each user's metric averaged over the seeds): difference in points, its 95% confidence interval, "
        f"p-value; * p < {SIGNIFICANCE_LEVEL}; † also below {SIGNIFICANCE_LEVEL} after Holm's correction for the "
        f"{len(tests)} comparison(s) on each metric. \"seeds p\": Welch's t-test of the seeds' means, which counts "
        "the spread between training seeds and not between test users, the other way round from the test over "
        "users (2 seeds or more; not corrected).",
        "",
        f"| {first} vs | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for other, row in tests.items():
        cells = []
        for column in columns:
            t = row[column]
            star = "*" if t["p"] < SIGNIFICANCE_LEVEL else ""
            star += "†" if t["p_holm"] < SIGNIFICANCE_LEVEL else ""
            seeds = "" if t.get("p_seeds") is None else f"; seeds p={t['p_seeds']:.3g}"
            cells.append(f"{t['delta']:+.2f} [{t['low']:+.2f}, {t['high']:+.2f}] p={t['p']:.3g}{star}{seeds}")
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(columns: list[str], table: dict, n_seeds: int, tests: dict | None = None) -> str:
    lines = [
        f"Test metrics in percent, mean ± std over {n_seeds} seed(s); **best**, _second best_; "
        f"▲% = relative improvement of {next(iter(table))} over the best other model"
        + (f", * where the paired test below gives p < {SIGNIFICANCE_LEVEL}." if tests else "."),
        "",
        "| model | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    marks = {column: _ranks(table, column) for column in columns}
    for variant, row in table.items():
        cells = []
        for column in columns:
            mean, std = row[column]
            cell = f"{mean:.3f} ± {std:.3f}"
            best, second = marks[column]
            cell = f"**{cell}**" if variant == best else f"_{cell}_" if variant == second else cell
            cells.append(cell)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    gains = [improvement(table, column) for column in columns]
    if any(g is not None for g in gains):
        cells = []
        for column, gain in zip(columns, gains):
            star = "*" if tests and tests[best_other(table, column)][column]["p"] < SIGNIFICANCE_LEVEL else ""
            cells.append("" if gain is None else f"{gain:+.2f}{star}")
        lines.append("| ▲% | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_diagnostics(results: dict) -> str | None:
    """The interest diagnostics of the multi-interest variants (:func:`recbole_umi.evaluation.
    interest_diagnostics`), mean ± std over seeds; None if no run has any."""
    def spread(values):
        return "-" if any(v is None for v in values) else "{:.3f} ± {:.3f}".format(*mean_std(values))

    lines = []
    for variant, runs in results.items():
        found = [r["interest_diagnostics"] for r in runs if r.get("interest_diagnostics")]
        if not found:
            continue
        shares = [d["routing_share"] for d in found]
        routed = not any(s is None for s in shares)
        share = " / ".join(f"{v:.2f}" for v in np.mean(shares, axis=0)) if routed else "-"
        lines.append(f"| {variant} | {len(shares[0]) if routed else '-'} | "
                     f"{spread([d['interest_cosine'] for d in found])} | "
                     f"{spread([d['routing_overlap'] for d in found])} | {share} | "
                     f"{spread([d.get('routing_by_position') for d in found])} |")
    if not lines:
        return None
    return "\n".join([
        "Interest diagnostics on the test users, mean ± std over the seeds: the mean cosine between two of a "
        "user's interests (near 1: near-duplicates), the routing overlap, the share of history items "
        "routed mostly to each interest, largest first, and the share routed mostly to the interest their "
        "position's random initial routing logits favour (near 1: the routing splits a history by position, "
        "not by its items; - where the routing has no such draw or the run predates the measure).",
        "",
        "| model | K | interest cosine | routing overlap | routing share | routing by position |",
        "| --- | --- | --- | --- | --- | --- |",
        *lines,
    ]) + "\n"


def write_csv(path: Path, columns: list[str], table: dict) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", *[f"{c} {stat}" for c in columns for stat in ("mean", "std")]])
        for variant, row in table.items():
            writer.writerow([variant, *[f"{v:.4f}" for c in columns for v in row[c]]])


def read_variant_files(path, variants: list[str]) -> dict[str, list[str]]:
    """``{variant: [yaml file, ...]}`` from a YAML mapping, for the ``variants`` run. The
    file may also name variants not run now (one plan for several ``compare`` calls), but
    every name must be a variant (:func:`resolve_variant`: a typo fails) and every file of a
    variant run must exist (relative paths: from the working directory)."""
    mapping = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{path} must map variant names to lists of YAML files")
    chosen = {}
    for variant, files in mapping.items():
        resolve_variant(str(variant))  # VariantError for a name that is no model or variant
        if variant not in variants:
            continue
        files = [files] if isinstance(files, str) else files
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"{path}: {variant}'s files {missing} do not exist")
        chosen[variant] = list(files)
    return chosen


def write_tests_csv(path: Path, columns: list[str], tests: dict) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        stats = ("delta", "low", "high", "p", "p_holm", "p_seeds")
        writer.writerow(["vs", *[f"{c} {stat}" for c in columns for stat in stats]])
        for other, row in tests.items():
            cells = ["" if row[c].get(stat) is None else f"{row[c][stat]:.6g}" for c in columns for stat in stats]
            writer.writerow([other, *cells])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
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
    parser.add_argument("--significance", default="ttest", choices=tuple(SIGNIFICANCE_TESTS),
                        help="paired test of the first model against each other one (default: ttest)")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    settings = parse_cmd_args(rest)  # fails now, not after hours of runs, on a malformed argument
    if "seed" in settings:
        raise ValueError("set the training seeds with --seeds, not --seed")
    variants = comma_list(args.models)
    seeds = comma_list(args.seeds, int)
    files = comma_list(args.config_files) or None
    variant_files = read_variant_files(args.variant_files, variants) if args.variant_files else None
    results = compare(variants, args.dataset, seeds, args.out, files, config_dict=settings, variant_files=variant_files)
    columns, table = summarise(results)
    tests = significance(results, columns, args.significance) if len(variants) > 1 else None
    markdown = render_markdown(columns, table, len(seeds), tests)
    out = Path(args.out)
    if tests:
        n_users = len(results[variants[0]][0]["test_per_user"]["user"])
        markdown += "\n" + render_significance(tests, columns, variants[0], n_users, args.significance)
        write_tests_csv(out / f"{args.table}_tests.csv", columns, tests)
    elif len(variants) > 1:
        markdown += "\nNo paired test: some runs were made before per-user results were kept.\n"
    diagnostics = render_diagnostics(results)
    if diagnostics:
        markdown += "\n" + diagnostics
    (out / f"{args.table}.md").write_text(markdown)
    write_csv(out / f"{args.table}.csv", columns, table)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
