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
to ``<out>/table_tests.csv``; the ▲% row marks the columns where the first model's gain over
the best other one is significant (p < 0.05), as the paper does. For the multi-interest
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

from recbole_umi import stats

from recbole_umi.checkpoint import CheckpointError, read_checkpoint, rebuild_settings
from recbole_umi.config import Config, comma_list, parse_cmd_args
from recbole_umi.files import DamagedFileError, read_json, run_lock, set_aside, write_atomic, write_csv_atomic
from recbole_umi.metrics import metric_columns, recbole_metric_name
from recbole_umi.provenance import check_same_code, code_version, describe_code
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
    "MissingRunsError",
    "SearchSeedError",
    "search_seeds",
    "check_comparison",
    "summarise",
    "per_seed_users",
    "table_test",
    "significance",
    "render_code",
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
        record = read_json(path)
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


class SearchSeedError(SettingsError):
    """A seed of the comparison is the training seed of the search that chose a variant's settings."""


# What tune writes into best.yaml (recbole_umi.tune.SEARCH_SEED_COMMENT; tune imports this module).
_SEARCH_SEED = re.compile(r"^# search training seed: (\d+)")


def search_seeds(files: list[str]) -> dict[int, str]:
    """``{seed: file}``: the training seeds of the searches whose ``best.yaml`` is among ``files``."""
    found = {}
    for name in files:
        for line in Path(name).read_text().splitlines():
            match = _SEARCH_SEED.match(line)
            if match:
                found[int(match.group(1))] = name
    return found


def check_search_seeds(files_of: dict[str, list[str]], seeds, allow: bool = False) -> None:
    """Refuse (:class:`SearchSeedError`) a seed that trained the search trials which chose a
    variant's settings: that seed's runs won the search, so a table on it compares against a
    winner's curse. ``allow``: make such a table anyway (an old table, say)."""
    if allow:
        return
    for variant, files in files_of.items():
        clash = {seed: name for seed, name in search_seeds(files).items() if seed in seeds}
        for seed, name in clash.items():
            raise SearchSeedError(
                "seeds", list(seeds),
                f"must not include {seed}: {variant}'s settings ({name}) were chosen by a search whose trials trained "
                "with that seed. Use other seeds, or --allow_search_seed=True for a table that knowingly includes it",
            )


def check_comparison(variants, dataset, seeds, out, config_file_list=None, config_dict=None,
                     variant_files: dict[str, list[str]] | None = None, allow_mixed_code: bool = False,
                     allow_search_seed: bool = False):
    """What :func:`compare` checks before its first run, without running anything: every
    variant and its settings (:func:`check_variants`), that the runs already in ``out``
    were made with these settings (:class:`SettingsMismatchError` if not) and, unless
    ``allow_mixed_code``, with the code that would make the missing ones
    (:class:`recbole_umi.provenance.MixedCodeError` if not). Returns each variant's config
    files, the jobs ``(variant, seed)`` seed by seed, and each variant's settings as its run
    files record them."""
    variant_files = variant_files or {}
    set_aside_damaged_runs(Path(out), [(v, seed) for seed in seeds for v in variants])
    files_of = {v: [*(config_file_list or []), *variant_files.get(v, [])] for v in variants}
    for variant in variants:  # now, not hours later when its first run would start
        check_variants([variant], dataset, files_of[variant], config_dict)
    check_search_seeds(files_of, seeds, allow_search_seed)
    jobs = [(variant, seed) for seed in seeds for variant in variants]
    # JSON round trip, so that the settings compare equal to those read back from disk
    settings_of = {v: json.loads(json.dumps(run_settings(files_of[v], config_dict))) for v in variants}
    check_finished_runs(Path(out), jobs, dataset, settings_of)
    check_run_code(Path(out), jobs, allow_mixed_code)
    return files_of, jobs, settings_of


def set_aside_damaged_runs(out: Path, jobs, log=print) -> None:
    """A run file of ``jobs`` that is not JSON (cut short by a crash before writes were
    atomic, or edited) is renamed to ``<name>.damaged`` with a line saying so, and its run is
    made again."""
    for variant, seed in jobs:
        path = run_file(out, variant, seed)
        if not path.exists():
            continue
        try:
            read_json(path)
        except DamagedFileError as error:
            kept = set_aside(path)
            log(f"{error}: set aside as {kept.name}; the run is made again")


def check_run_code(out: Path, jobs, allow_mixed_code: bool = False) -> None:
    """Refuse (:class:`recbole_umi.provenance.MixedCodeError`) to add runs of this code to
    finished runs of ``jobs`` made with other code, or to tabulate finished runs of
    several codes, unless ``allow_mixed_code``."""
    records = []
    for variant, seed in jobs:
        path = run_file(out, variant, seed)
        name = f"{variant} seed {seed}"
        if path.exists():
            records.append({"name": name, "code": read_json(path).get("code")})
        else:
            records.append({"name": f"{name} (to run now)", "code": code_version()})
    check_same_code(records, f"the comparison in {out}", allow_mixed_code)


class MissingRunsError(FileNotFoundError):
    """``table_only``: a run the table needs is not on disk."""


def compare(variants, dataset, seeds, out, config_file_list=None, config_dict=None, log=print,
            variant_files: dict[str, list[str]] | None = None, allow_mixed_code: bool = False,
            table_only: bool = False, allow_search_seed: bool = False) -> dict:
    """Run every variant with every seed, seed by seed (every variant's first seed before
    any second one: a comparison cut short is complete for its first seeds), skipping runs
    already on disk; returns ``{variant: [run record per seed]}``. A variant's own settings
    and the seed override ``config_dict``, which overrides ``variant_files[variant]`` (that
    variant's YAML files, e.g. its tuned ``best.yaml``), which override ``config_file_list``.
    ``table_only``: train nothing; :class:`MissingRunsError` naming the runs not on disk."""
    files_of, jobs, settings_of = check_comparison(variants, dataset, seeds, out, config_file_list, config_dict,
                                                   variant_files, allow_mixed_code, allow_search_seed)
    out = Path(out)
    missing = [f"{variant} seed {seed}" for variant, seed in jobs if not run_file(out, variant, seed).exists()]
    if table_only and missing:
        raise MissingRunsError(f"--table_only: {len(missing)} run(s) are not in {out / 'runs'}: {', '.join(missing)}")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    done_here = 0

    def make(number: int, variant: str, seed: int) -> None:
        nonlocal done_here
        path = run_file(out, variant, seed)
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
            "code": code_version(),  # the code that ran it (a resumed run: the code that finished it)
            "resumed_from": None if resume is None else str(resume),
            "epochs": result["epochs"],
            "best_epoch": result["best_epoch"],
            "best_valid_result": {k: float(v) for k, v in result["best_valid_result"].items()},
            "test_result": {k: float(v) for k, v in result["test_result"].items()},
            # each test user's metrics, for the paired tests (rounded: JSON size)
            "interest_diagnostics": result["interest_diagnostics"],
            "test_per_user": _rounded(result["test_per_user"]),
        }
        if result.get("history_curve"):  # eval_history_curve: the model with each held-out user's first k items
            record["history_curve"] = {k: {**point, "test_per_user": _rounded(point["test_per_user"])}
                                       for k, point in result["history_curve"].items()}
        if result.get("unseen"):  # also_exclude_history: the model with each user's history left out
            record["unseen"] = {**result["unseen"], "test_per_user": _rounded(result["unseen"]["test_per_user"])}
        write_atomic(path, json.dumps(record, indent=2) + "\n")  # whole or absent
        done_here += 1
        elapsed = time.perf_counter() - began
        remaining = sum(not run_file(out, v, s).exists() for v, s in jobs)
        log(
            f"[{number}/{len(jobs)}] {variant} seed {seed}: done in {record['wall_s']:.0f}s "
            f"({epochs_text(record)}); about {elapsed / done_here * remaining / 60:.0f} min left"
        )

    # A run another process is making (its lock is held) is left to it and waited for at the
    # end; if that process dies first, this one makes the run.
    elsewhere = []
    for number, (variant, seed) in enumerate(jobs, 1):
        path = run_file(out, variant, seed)
        if path.exists():
            log(f"[{number}/{len(jobs)}] {variant} seed {seed}: already done ({path.name})")
            continue
        with run_lock(path) as mine:
            if not mine:
                log(f"[{number}/{len(jobs)}] {variant} seed {seed}: another process is making it; this one goes on")
                elsewhere.append((number, variant, seed))
            elif not path.exists():  # not finished by another process meanwhile
                make(number, variant, seed)
    for number, variant, seed in elsewhere:
        path = run_file(out, variant, seed)
        log(f"[{number}/{len(jobs)}] {variant} seed {seed}: waiting for the other process's run ...")
        while not path.exists():
            with run_lock(path) as mine:
                if mine and not path.exists():  # the other process ended without it
                    make(number, variant, seed)
            if not path.exists():
                time.sleep(LOCK_POLL_S)
    results: dict[str, list] = {variant: [] for variant in variants}
    for variant, seed in jobs:
        results[variant].append(read_json(run_file(out, variant, seed)))
    return results


def _rounded(per_user: dict) -> dict:
    """Per-user metrics rounded to 6 digits (JSON size); the users and history lengths as they are."""
    return {k: v if k in ("user", "history_length") else [round(float(x), 6) for x in v] for k, v in per_user.items()}


# Seconds between looks at a run another process is making.
LOCK_POLL_S = 30


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


def seed_averaged_users(runs: list[dict], metric: str) -> tuple[list[str], np.ndarray] | None:
    """Each test user's ``metric`` averaged over the runs (seeds); None where a run lacks
    per-user results (made before they were kept)."""
    found = per_seed_users(runs, metric)
    return None if found is None else (found[0], found[1].mean(axis=0))


def per_seed_users(runs: list[dict], metric: str) -> tuple[list[str], np.ndarray] | None:
    """The test users and their ``metric`` in each run, ``runs x users``; None where a run
    lacks per-user results (made before they were kept)."""
    if not all("test_per_user" in r for r in runs):
        return None
    users = runs[0]["test_per_user"]["user"]
    for r in runs[1:]:
        if r["test_per_user"]["user"] != users:
            raise ValueError(f"{r['variant']} seed {r['seed']} was tested on other users than seed {runs[0]['seed']}")
    return users, np.array([r["test_per_user"][metric] for r in runs], dtype=float)


def run_means(runs: list[dict], metric: str) -> list[float]:
    """Each run's ``metric`` averaged over its test users."""
    return [float(np.mean(r["test_per_user"][metric])) for r in runs]


def table_test(results: dict, test: str = "two_level") -> str:
    """The test a table gets: ``test``, except that the two-level test needs two seeds or
    more of every model (the seeds' spread is measured from them): with fewer, the paired
    t-test over the users, which the table then says does not count the seeds' spread."""
    if test == "two_level" and min(len(runs) for runs in results.values()) < 2:
        return "ttest"
    return test


def significance(results: dict, columns: list[str], test: str = "two_level") -> dict | None:
    """``{other variant: {column: test}}`` in percentage points, the first variant against
    each other one: with ``two_level`` (:func:`recbole_umi.stats.two_level_test`) over the
    test users and the training seeds; with ``ttest`` or ``wilcoxon``
    (:func:`recbole_umi.stats.paired_test`) over the test users, each user's metric averaged
    over the seeds, and then also ``p_seeds``, Welch's t-test of the seeds' means (None with
    fewer than 2 seeds). Each test holds ``p_holm``, its p-value adjusted (:func:`holm`) for
    the comparisons with every other variant on the same metric. None if some run has no
    per-user results. Call :func:`table_test` first: ``two_level`` needs 2 seeds a model."""
    if test not in stats.TESTS:
        raise ValueError(f"test must be one of {tuple(stats.TESTS)}, got {test!r}")
    variants = list(results)
    tests = {}
    for other in variants[1:]:
        tests[other] = {}
        for column in columns:
            metric = recbole_metric_name(column)
            first, second = per_seed_users(results[variants[0]], metric), per_seed_users(results[other], metric)
            if first is None or second is None:
                return None
            if first[0] != second[0]:
                raise ValueError(f"{variants[0]} and {other} were tested on other users: not the same split")
            if test == "two_level":
                result = stats.two_level_test(100 * first[1], 100 * second[1])
                if result is None:
                    raise ValueError(f"the two-level test needs 2 seeds or more of {variants[0]} and {other}")
            else:
                result = stats.paired_test(100 * first[1].mean(axis=0), 100 * second[1].mean(axis=0), test)
                result["p_seeds"] = stats.seed_test(run_means(results[variants[0]], metric),
                                                    run_means(results[other], metric))
            tests[other][column] = result
    for column in columns:
        adjusted = stats.holm([tests[other][column]["p"] for other in tests])
        for other, p_holm in zip(tests, adjusted):
            tests[other][column]["p_holm"] = p_holm
    return tests


def history_buckets(lengths, n_buckets: int) -> list[tuple[int, int]]:
    """``n_buckets`` ranges ``(low, high)`` of history lengths (inclusive) at the quantiles
    of ``lengths``, fewer where lengths repeat; every length falls in one."""
    lengths = np.asarray(lengths)
    cuts = np.unique(np.quantile(lengths, np.linspace(0, 1, n_buckets + 1)[1:-1], method="lower"))
    lows = [int(lengths.min()), *[int(c) + 1 for c in cuts]]
    highs = [*[int(c) for c in cuts], int(lengths.max())]
    return [(low, high) for low, high in zip(lows, highs) if low <= high]


def render_history_breakdown(results: dict, column: str, n_buckets: int) -> str | None:
    """The test ``column`` (a paper name, HitRate@50) of every variant per quantile bucket of
    the test users' history length (before the model's last-T cut): mean [95% two-level
    interval], then the first variant minus each other one per bucket with the two-level
    test (Holm over the comparisons in a bucket). None where runs lack history lengths (made
    before 2026-12-03) or per-user results."""
    metric = recbole_metric_name(column)
    variants = list(results)
    if not all("history_length" in r.get("test_per_user", {}) for runs in results.values() for r in runs):
        return None
    lengths = np.array(results[variants[0]][0]["test_per_user"]["history_length"])
    buckets = history_buckets(lengths, n_buckets)
    values = {v: per_seed_users(results[v], metric)[1] * 100 for v in variants}
    names = [f"{low}-{high} ({int(((lengths >= low) & (lengths <= high)).sum())} users)" for low, high in buckets]
    lines = [f"Test {column} by the test users' history length (items before the first target, before the model's "
             f"last-T cut), in {len(buckets)} quantile buckets: mean in percent [95% two-level interval over the "
             "bucket's users and the seeds; the mean alone with one seed].", "",
             "| model | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(buckets)]
    for variant in variants:
        cells = []
        for low, high in buckets:
            users = (lengths >= low) & (lengths <= high)
            mean = stats.two_level_mean(values[variant][:, users])
            cells.append(f"{values[variant][:, users].mean():.2f}" if mean is None else
                         f"{mean['mean']:.2f} [{mean['low']:.2f}, {mean['high']:.2f}]")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if len(variants) > 1 and min(len(runs) for runs in results.values()) >= 2:
        lines += ["", f"{variants[0]} minus each model per bucket, in points [95% two-level interval], p; † below "
                  f"{stats.LEVEL} after Holm's correction over the {len(variants) - 1} comparison(s) in the bucket.", "",
                  f"| {variants[0]} vs | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(buckets)]
        cells = {v: [] for v in variants[1:]}
        for low, high in buckets:
            users = (lengths >= low) & (lengths <= high)
            found = {v: stats.two_level_test(values[variants[0]][:, users], values[v][:, users]) for v in variants[1:]}
            for v, p_holm in zip(found, stats.holm([t["p"] for t in found.values()])):
                t = found[v]
                cells[v].append(f"{t['delta']:+.2f} [{t['low']:+.2f}, {t['high']:+.2f}] p={t['p']:.2g}"
                                + ("†" if p_holm < stats.LEVEL else ""))
        lines += [f"| {v} | " + " | ".join(row) + " |" for v, row in cells.items()]
    return "\n".join(lines) + "\n"


def render_significance(tests: dict, columns: list[str], first: str, n_users: int, test: str,
                        n_seeds: int | None = None) -> str:
    level = stats.LEVEL
    if test == "two_level":
        caption = (
            f"Two-level test of {first} against each model over the {n_users} test users and the training seeds "
            "(recbole_umi.stats.two_level_test: both the test users and the seeds count as samples, so the "
            "interval is as wide as a rerun with other seeds and users could move the difference): difference "
            f"in points, its 95% interval, p-value; * p < {level}; † also below {level} after Holm's correction "
            f"for the {len(tests)} comparison(s) on each metric."
        )
    else:
        caption = (
            f"{stats.TESTS[test].capitalize()} of {first} against each model (each user's metric averaged over the "
            f"seeds; the {n_users} test users are the samples): difference in points, its 95% confidence interval, "
            f"p-value; * p < {level}; † also below {level} after Holm's correction for the {len(tests)} "
            "comparison(s) on each metric. This test does not count how much a model moves from one training "
            "seed to the next" + (" (one seed: that spread cannot be measured)" if n_seeds == 1 else "")
            + ". \"seeds p\": Welch's t-test of the seeds' means, which counts the spread between training seeds "
            "and not between test users (2 seeds or more; not corrected)."
        )
    lines = [caption, "", f"| {first} vs | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for other, row in tests.items():
        cells = []
        for column in columns:
            t = row[column]
            star = "*" if t["p"] < level else ""
            star += "†" if t["p_holm"] < level else ""
            seeds = "" if t.get("p_seeds") is None else f"; seeds p={t['p_seeds']:.3g}"
            cells.append(f"{t['delta']:+.2f} [{t['low']:+.2f}, {t['high']:+.2f}] p={t['p']:.3g}{star}{seeds}")
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(columns: list[str], table: dict, n_seeds: int, tests: dict | None = None) -> str:
    lines = [
        f"Test metrics in percent, mean ± std over {n_seeds} seed(s); **best**, _second best_; "
        f"▲% = relative improvement of {next(iter(table))} over the best other model"
        + (f", * where the test below gives p < {stats.LEVEL}." if tests else "."),
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
            star = "*" if tests and tests[best_other(table, column)][column]["p"] < stats.LEVEL else ""
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
    rows = [["model", *[f"{c} {stat}" for c in columns for stat in ("mean", "std")]]]
    rows += [[variant, *[f"{v:.4f}" for c in columns for v in row[c]]] for variant, row in table.items()]
    write_csv_atomic(path, rows)


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


def render_code(results: dict, allow_mixed: bool = False) -> str:
    """The code the runs of a table ran (:mod:`recbole_umi.provenance`): one line when it is
    one version, else a list of the versions and their runs (which only ``allow_mixed``
    permits: :class:`recbole_umi.provenance.MixedCodeError` otherwise)."""
    records = [{"name": f"{variant} seed {r['seed']}", "code": r.get("code")}
               for variant, runs in results.items() for r in runs]
    groups = check_same_code(records, "this table", allow_mixed)
    if len(groups) == 1:
        return f"Code: {describe_code(records[0]['code'])}.\n"
    described = {}
    for record in records:
        described.setdefault(describe_code(record["code"]), []).append(record["name"])
    lines = [f"Runs of {len(groups)} code versions in this table (--allow_mixed_code):", ""]
    lines += [f"- {version}: {', '.join(names)}" for version, names in described.items()]
    return "\n".join(lines) + "\n"


def write_tests_csv(path: Path, columns: list[str], tests: dict) -> None:
    fields = ("delta", "low", "high", "p", "p_holm", "p_seeds", "df", "seed_share")
    rows = [["vs", *[f"{c} {field}" for c in columns for field in fields]]]
    for other, row in tests.items():
        rows.append([other, *("" if row[c].get(field) is None else f"{row[c][field]:.6g}"
                              for c in columns for field in fields)])
    write_csv_atomic(path, rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m recbole_umi.compare", 
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
    parser.add_argument("--allow_mixed_code", default="False", choices=("True", "False"),
                        help="put runs of different code versions in one table (the table lists them)")
    parser.add_argument("--table_only", default="False", choices=("True", "False"),
                        help="train nothing: make the table from the runs on disk, or fail naming the missing ones")
    parser.add_argument("--allow_search_seed", default="False", choices=("True", "False"),
                        help="allow a seed that trained the search choosing a variant's settings (best.yaml names it)")
    parser.add_argument("--history_buckets", type=int, default=0,
                        help="also break the test HitRate@50 down by the users' history length in this many "
                             "quantile buckets (0: not)")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    settings = parse_cmd_args(rest)  # fails now, not after hours of runs, on a malformed argument
    if "seed" in settings:
        raise ValueError("set the training seeds with --seeds, not --seed")
    variants = comma_list(args.models)
    seeds = comma_list(args.seeds, int)
    files = comma_list(args.config_files) or None
    variant_files = read_variant_files(args.variant_files, variants) if args.variant_files else None
    allow_mixed = args.allow_mixed_code == "True"
    results = compare(variants, args.dataset, seeds, args.out, files, config_dict=settings, variant_files=variant_files,
                      allow_mixed_code=allow_mixed, table_only=args.table_only == "True",
                      allow_search_seed=args.allow_search_seed == "True")
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
    markdown += "\n" + render_code(results, allow_mixed)
    write_atomic(out / f"{args.table}.md", markdown)
    write_csv(out / f"{args.table}.csv", columns, table)
    print(markdown)
    return markdown


if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.compare"))
